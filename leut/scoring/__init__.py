"""leut.scoring: the statistics the evaluation computes from model and brain RDMs, before any table is written.

`stimulus_stats` (noise ceilings, partial RSA, the stimulus bootstrap, the cross-validated best layer) and
`bootstrap_differences` (paired differences between rules and epochs from the bootstrap draws) are called by
`leut.evaluate` and `leut.score_features` with the RDMs in memory; `two_level_bootstrap` (the same contrasts
resampled over seeds and stimuli together) and `model_similarity` (drift from epoch 0, inter-seed consistency and
rule-vs-rule similarity of the model RDMs) by `leut.evaluate`; they write tidy rows. `leut.report` only reads
the tables they produce and renders them (it shares `layer_choice.modal_layer` with them).
"""

"""leut.scoring: the statistics the evaluation computes from model and brain RDMs, before any table is written.

`stimulus_stats` (noise ceilings, partial RSA, the stimulus bootstrap, the cross-validated best layer) and
`bootstrap_differences` (paired differences between rules and epochs from the bootstrap draws) are called by
`leut.evaluate` and `leut.score_features` with the RDMs in memory; they write tidy rows. `leut.report` only reads
the tables they produce and renders them (it shares `layer_choice.modal_layer` with them).
"""

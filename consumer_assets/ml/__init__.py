"""The order model: plain PyTorch, scikit-learn and numpy, no Dagster, in rooms by concern.

- `model/`: what a model is: its hyperparameters and input encoding (`config`), the network
  (`network`), the weights-only artifact (`artifact`) and the device it runs on (`device`).
- `training/`: labels from raw_events (`labels`), histories as columnar arrays (`data`) in
  length-grouped batches (`batches`), the loop (`train`), the legacy logistic baseline
  (`baseline`), metrics (`metrics`), the validation report and the one quality gate (`evaluate`),
  and the day's training in one call (`day`).
- `scoring/`: probabilities for histories (`predict`), scored, explained and summarized prediction
  batches (`predictions`), a profile bucket's files to one predictions file (`buckets`) and the same
  as one Spark task per bucket (`spark`).
- `monitoring/`: drift statistics (`drift`), the events that moved a prediction (`explain`) and the
  data-quality rules the asset checks apply (`quality`).
"""

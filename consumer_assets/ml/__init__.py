"""Model code: plain PyTorch, scikit-learn and numpy; no Dagster."""

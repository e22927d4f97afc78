"""Step 10: fit the program to a team's human labels with DSPy's optimizers, and tune its other knobs with Optuna."""

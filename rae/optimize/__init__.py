"""Step 8 of the loop: fit the program to a team's human labels with DSPy's optimizers, and tune its other knobs with Optuna."""

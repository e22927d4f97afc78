"""Step 10 of the loop: humans review the hard cases, and their labels flow back into calibration and optimisation."""

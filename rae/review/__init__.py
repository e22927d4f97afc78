"""Step 9 of the loop, Repeat: humans review the hard cases on a web page, and their labels flow back into calibration
and optimisation."""

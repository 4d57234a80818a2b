"""The reproduction of the paper: the grid of runs, the paper's tables and numbers, and the statistics."""

"""The package's plumbing, below everything else: one-line errors, atomic files, run-folder locks,
optional dependencies and what a path holds. Imports nothing of epsanet's outside this folder."""

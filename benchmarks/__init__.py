"""Side-by-side benchmarks of zoho-async: ``python -m benchmarks [--quick]``; see README.md."""

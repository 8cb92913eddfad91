"""declarun.reconcile: carry out a plan against an engine, then check the result."""

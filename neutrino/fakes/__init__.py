"""Stateful fakes of host subsystems, shipped next to the code they stand in for."""

"""Widgets only; they observe services and the job store through Qt models and signals."""

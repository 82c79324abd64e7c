"""Keeping the one shared model busy: windows of several files decoded together in batches.

``layout`` loads the model for batching, ``windows`` cuts files into ≤ 30-s windows, ``decode`` turns a
batch's tokens into segments (pure functions), ``scheduler`` runs the threads around them.
"""

"""Frames as data: pixel-format descriptors, colour maths (planes ↔ RGB on the device) and output sizing."""

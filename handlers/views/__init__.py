"""Rendering: texts and keyboards of each screen."""

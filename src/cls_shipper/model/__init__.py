"""The shared model at the bottom of the house: the shipper configuration and its catalogue,
object naming, and window arithmetic. Imports nothing of the project but the base modules."""

"""A live simulation of the region's national systems: a seeded plan of events anchored to the hub's
clock (``plan``, ``mass_release``, pure), and the adapter that publishes it through each country's door
(``run``)."""

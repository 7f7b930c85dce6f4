"""tizi: portable deployment of one inference service with Moroccan data-residency placement."""

"""The noise classes a user reads, from the fine categories of the data: the one place the
mapping lives.

Each noise file of the corpus has a fine ``category`` (64: ESC-50's 50 classes, the pack's 13,
music and babble). The probes learn five classes of how a noise sounds, the taxonomy that won
on valid against the corpus's 7 groups and two others (``recipes/choose_noise_classes.py``,
docs/probes.md "Noise classes"): each calls for a different remedy (a denoiser, a de-clicker,
a notch, source separation). A category this table does not name (a user's own folder of
noise) is its own class.
"""
from __future__ import annotations


def by_category(classes: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """{class: categories} -> {category: class}."""
    return {category: name for name, categories in classes.items() for category in categories}


# Steady noise, talkers, music, bursts, pitched sounds.
NOISE_CLASSES = by_category({
    "stationary": ("rain", "rain_storm", "sea_waves", "wind", "engine", "train", "airplane", "helicopter",
                   "vacuum_cleaner", "washing_machine", "fan_ventilation", "machinery", "street_traffic", "transport",
                   "crackling_fire", "fire", "pouring_water", "toilet_flush", "water", "brushing_teeth", "breathing",
                   "chainsaw", "hand_saw", "nature_ambience", "thunderstorm", "snoring"),
    "babble": ("babble", "crowd_babble"),
    "music": ("music",),
    "impulsive": ("door_wood_knock", "door_wood_creaks", "mouse_click", "keyboard_typing", "typing", "clock_tick",
                  "footsteps", "glass_breaking", "can_opening", "fireworks", "clapping", "kitchen", "drinking_sipping",
                  "dog", "sneezing", "coughing", "water_drops", "laughing", "hen", "frog", "pig"),
    "tonal": ("siren", "clock_alarm", "church_bells", "car_horn", "crying_baby", "rooster", "cow", "cat", "sheep",
              "crow", "chirping_birds", "crickets", "insects", "electrical_hum"),
})


def noise_class(row: dict) -> str:
    """The class of a noise manifest row, from its ``category``."""
    return NOISE_CLASSES.get(row["category"], row["category"])

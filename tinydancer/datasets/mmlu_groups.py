"""MMLU's 57 subjects in the four groups of its paper (Hendrycks et al. 2021): STEM, humanities, social sciences, other.

Used to build small-data experiments inside one subject group (``benchmarks/evaluate_scorers.py``).

Examples:
    >>> MMLU_GROUPS["abstract_algebra"], MMLU_GROUPS["professional_law"]
    ('stem', 'humanities')
    >>> len(MMLU_GROUPS), sorted(set(MMLU_GROUPS.values()))
    (57, ['humanities', 'other', 'social_sciences', 'stem'])
"""

from __future__ import annotations

from types import MappingProxyType

_SUBJECTS_BY_GROUP = {
    "stem": (
        "abstract_algebra", "astronomy", "college_biology", "college_chemistry", "college_computer_science",
        "college_mathematics", "college_physics", "computer_security", "conceptual_physics", "electrical_engineering",
        "elementary_mathematics", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
        "high_school_mathematics", "high_school_physics", "high_school_statistics", "machine_learning",
    ),
    "humanities": (
        "formal_logic", "high_school_european_history", "high_school_us_history", "high_school_world_history",
        "international_law", "jurisprudence", "logical_fallacies", "moral_disputes", "moral_scenarios", "philosophy",
        "prehistory", "professional_law", "world_religions",
    ),
    "social_sciences": (
        "econometrics", "high_school_geography", "high_school_government_and_politics", "high_school_macroeconomics",
        "high_school_microeconomics", "high_school_psychology", "human_sexuality", "professional_psychology",
        "public_relations", "security_studies", "sociology", "us_foreign_policy",
    ),
    "other": (
        "anatomy", "business_ethics", "clinical_knowledge", "college_medicine", "global_facts", "human_aging",
        "management", "marketing", "medical_genetics", "miscellaneous", "nutrition", "professional_accounting",
        "professional_medicine", "virology",
    ),
}  # fmt: skip

#: MMLU subject -> its group (read-only).
MMLU_GROUPS = MappingProxyType({s: group for group, subjects in _SUBJECTS_BY_GROUP.items() for s in subjects})

__all__ = ["MMLU_GROUPS"]

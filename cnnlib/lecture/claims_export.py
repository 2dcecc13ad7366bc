"""The lecture's tools: the predicates behind notebook 04's checked sentences (see `claims`)."""

from __future__ import annotations

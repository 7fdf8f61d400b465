"""Run inside Blender: import a BVH and write every joint's world position per frame as JSON.

    blender -b --factory-startup --python tests/blender_read_bvh.py -- FILE.bvh UP OUT.json
"""

import json
import sys

import bpy

import builtins

import io_anim_bvh.import_bvh

# Debian's Blender 3.4 runs on Python 3.11, where open(..., 'rU') no longer exists, and its BVH importer
# still asks for it: give the importer an open() that drops the 'U'.
io_anim_bvh.import_bvh.open = lambda file, mode="r", *a, **k: builtins.open(file, mode.replace("U", ""), *a, **k)

path, up, out = sys.argv[sys.argv.index("--") + 1:]
bpy.ops.wm.read_factory_settings(use_empty=True)
axes = {"y": dict(axis_forward="-Z", axis_up="Y"), "z": dict(axis_forward="Y", axis_up="Z")}[up]
bpy.ops.import_anim.bvh(filepath=path, global_scale=1.0, rotate_mode="NATIVE", use_fps_scale=False,
                        update_scene_fps=True, update_scene_duration=True, **axes)
arm = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
scene = bpy.context.scene
first, last = (int(round(v)) for v in arm.animation_data.action.frame_range)  # the keyed frames
frames = {}
for f in range(first, last + 1):
    scene.frame_set(f)
    frames[f - first] = {b.name: list(arm.matrix_world @ b.head) for b in arm.pose.bones}
json.dump({"fps": scene.render.fps / scene.render.fps_base, "frames": frames}, open(out, "w"))

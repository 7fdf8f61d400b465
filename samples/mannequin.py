"""A shaded capsule mannequin, ray-cast in numpy: the renderer of ``samples/make_sample.py`` as a library.

A Human3.6M-17 skeleton (camera coordinates, metres) is dressed in capsules (``capsules``), each ray of a
pinhole ``Camera`` is intersected with them (Inigo Quilez's ray-capsule test), hits are Lambert-shaded with a
little specular and rim light, and the floor gets the mannequin's cast shadow. The scene around it (a tiled
floor, an optional back wall) is drawn once per camera by ``background_image``; ``render_frame`` composites one
pose over it. Everything about the look (colours, light, floor, wall) is a ``Look``.

    cam = Camera.looking_at(640, 480, 620.0, eye=[0.4, -5, 1.5], target=[0.4, -0.2, 0.8])
    look = Look()
    background, floor = background_image(cam, look)
    frame = render_frame(cam.to_camera(joints_world), background, floor, cam.rotation @ look.light, cam, look)

Frames are BGR uint8 (OpenCV's order, what ``video3d.video.VideoWriter`` takes); colours in ``Look`` are RGB
in [0, 1]. Cost: only the pixels in the box around the mannequin and its shadow are ray-cast, and each capsule
is tested only against the rays inside its own projected bounding box (exact: a ray outside it cannot hit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RGB = tuple[float, float, float]
HAZE_DISTANCE = 25.0  # metres: without a back wall, the floor fades into the backdrop (63 % at this distance)


# --------------------------------------------------------------------------------------------
# camera
# --------------------------------------------------------------------------------------------
def look_at(eye, target, roll: float = 0.0) -> np.ndarray:
    """World (z up) -> camera rotation (rows: camera x right, y down, z forward), looking from eye at target;
    ``roll`` (radians) turns the camera about its viewing axis (positive: the image turns clockwise)."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    if roll:
        c, s = np.cos(roll), np.sin(roll)
        x, y = c * x + s * y, -s * x + c * y
    return np.stack([x, y, z])


@dataclass
class Camera:
    """A pinhole camera without distortion. ``rotation`` maps world to camera (rows: x right, y down,
    z forward); ``position`` is the camera centre in the world (z up); pixels are (x right, y down)."""

    width: int
    height: int
    focal: float
    center: tuple[float, float]
    rotation: np.ndarray
    position: np.ndarray

    def __post_init__(self) -> None:
        self.rotation = np.asarray(self.rotation, float)
        self.position = np.asarray(self.position, float)
        self.center = (float(self.center[0]), float(self.center[1]))

    @classmethod
    def looking_at(cls, width: int, height: int, focal: float, eye, target, roll: float = 0.0,
                   center: tuple[float, float] | None = None) -> "Camera":
        center = (width / 2, height / 2) if center is None else center
        return cls(width, height, focal, center, look_at(eye, target, roll), np.asarray(eye, float))

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> camera coordinates."""
        return (np.asarray(points) - self.position) @ self.rotation.T

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera points (..., 3) -> pixels (..., 2)."""
        points_cam = np.asarray(points_cam)
        return self.focal * points_cam[..., :2] / points_cam[..., 2:3] + np.array(self.center)


# --------------------------------------------------------------------------------------------
# look
# --------------------------------------------------------------------------------------------
@dataclass
class Look:
    """Colours (RGB, 0-1), the light and the room. The defaults are samples/make_sample.py's."""

    skin: RGB = (0.80, 0.62, 0.52)
    shirt: RGB = (0.75, 0.22, 0.18)
    trousers: RGB = (0.16, 0.26, 0.55)
    shoes: RGB = (0.92, 0.92, 0.90)
    hair: RGB = (0.15, 0.10, 0.07)
    eyes: RGB = (0.05, 0.04, 0.04)
    light: tuple[float, float, float] = (0.35, 0.55, -1.0)  # the direction the light travels, world (z up)
    floor: RGB = (0.62, 0.60, 0.57)
    tile: float = 0.5  # floor tile size, metres (a checkerboard of two shades)
    floor_height: float = 0.0  # the floor is the plane z = floor_height (world)
    floor_falloff: float = 0.04  # the floor darkens by this per metre from the camera (down to half)
    wall: RGB = (0.86, 0.85, 0.80)
    # the back wall: a vertical plane facing the camera, this far from it (metres, horizontally, along the
    # camera's viewing direction); None: no wall, the floor runs to the horizon under a plain backdrop
    wall_distance: float | None = 7.6
    skirting: RGB = (0.45, 0.42, 0.40)
    shadow: float = 0.45  # how much of the floor's light the cast shadow takes away

    def __post_init__(self) -> None:
        for name in ("skin", "shirt", "trousers", "shoes", "hair", "eyes", "light", "floor", "wall", "skirting"):
            setattr(self, name, tuple(float(v) for v in getattr(self, name)))


# --------------------------------------------------------------------------------------------
# mannequin as capsules (A, B, radius, colour) in camera space
# --------------------------------------------------------------------------------------------
def capsules(J: np.ndarray, look: Look) -> list[tuple[np.ndarray, np.ndarray, float, np.ndarray]]:
    """The mannequin of H36M-17 joints J (17, 3): (end A, end B, radius, RGB colour) per capsule. Its
    proportions are the skeleton's; the thickness of the limbs and the head are fixed."""
    skin, shirt, trousers = np.array(look.skin), np.array(look.shirt), np.array(look.trousers)
    shoes, hair, eyes = np.array(look.shoes), np.array(look.hair), np.array(look.eyes)
    up = J[8] - J[0]
    up /= np.linalg.norm(up)
    fwd_foot = []
    for knee, ankle in ((2, 3), (5, 6)):
        shin = J[ankle] - J[knee]
        side = np.cross(shin, J[1] - J[4])
        side = side / (np.linalg.norm(side) + 1e-9)
        fwd_foot.append(side)
    caps = [
        (J[1] + up * 0.02, J[4] + up * 0.02, 0.115, trousers),  # pelvis
        (J[1] + up * 0.10, J[14] - up * 0.09, 0.095, shirt),  # right flank
        (J[4] + up * 0.10, J[11] - up * 0.09, 0.095, shirt),  # left flank
        (J[0] + up * 0.10, J[8] - up * 0.06, 0.125, shirt),  # chest and belly
        (J[14], J[11], 0.075, shirt),  # shoulder line
        (J[8], J[8] + (J[9] - J[8]) * 0.6, 0.05, skin),  # neck
        (J[14], J[15], 0.052, shirt), (J[11], J[12], 0.052, shirt),
        (J[15], J[16], 0.042, skin), (J[12], J[13], 0.042, skin),
        (J[16] + (J[16] - J[15]) * 0.15, J[16] + (J[16] - J[15]) * 0.32, 0.045, skin),  # hands
        (J[13] + (J[13] - J[12]) * 0.15, J[13] + (J[13] - J[12]) * 0.32, 0.045, skin),
        (J[1], J[2], 0.078, trousers), (J[4], J[5], 0.078, trousers),
        (J[2], J[3], 0.058, trousers), (J[5], J[6], 0.058, trousers),
        (J[3] - up * 0.03, J[3] - up * 0.05 + fwd_foot[0] * 0.16, 0.045, shoes),
        (J[6] - up * 0.03, J[6] - up * 0.05 + fwd_foot[1] * 0.16, 0.045, shoes),
    ]
    head_c = J[9] + (J[10] - J[9]) * 0.45 - (J[9] - J[8]) * 0.25
    caps.append((head_c - up * 0.02, head_c + up * 0.03, 0.098, skin))  # head
    face = J[9] - J[8]
    face = face - up * (face @ up)
    face /= np.linalg.norm(face)
    side = np.cross(up, face)  # the person's left
    for sgn in (1, -1):
        eye = head_c + face * 0.088 + up * 0.025 + side * sgn * 0.035
        caps.append((eye, eye + side * sgn * 0.006, 0.015, eyes))
        ear = head_c + side * sgn * 0.097 - face * 0.01
        caps.append((ear, ear - face * 0.02, 0.022, skin))
    caps.append((head_c + face * 0.09, head_c + face * 0.115 - up * 0.02, 0.018, skin))  # nose
    caps.append((head_c + up * 0.045 - (J[9] - J[8]) * 0.25, head_c + up * 0.05 - (J[9] - J[8]) * 0.45, 0.085, hair))
    return caps


def intersect_capsule(ro: np.ndarray, rd: np.ndarray, a: np.ndarray, b: np.ndarray, r: float):
    """Rays (origins ro (3,) or (N, 3), directions rd (N, 3) or (3,)) vs the capsule a-b of radius r:
    distances (N,) (inf on a miss) and the surface normals at the hits (Inigo Quilez's formulation)."""
    ro, rd = np.broadcast_arrays(np.asarray(ro, float), np.asarray(rd, float))
    ba = b - a
    oa = ro - a
    baba = ba @ ba
    bard = rd @ ba
    baoa = oa @ ba
    rdoa = np.einsum("ij,ij->i", rd, oa)
    oaoa = np.einsum("ij,ij->i", oa, oa)
    qa = baba - bard * bard
    qb = baba * rdoa - baoa * bard
    qc = baba * oaoa - baoa * baoa - r * r * baba
    h = qb * qb - qa * qc
    t = np.full(len(rd), np.inf)
    hit = h >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        tb = (-qb - np.sqrt(np.where(hit, h, 0.0))) / qa
    y = baoa + tb * bard
    body = hit & (y > 0) & (y < baba) & (tb > 0)
    t[body] = tb[body]
    oc = np.where((y <= 0)[:, None], oa, ro - b)  # the cap on the side the ray meets
    bb = np.einsum("ij,ij->i", rd, oc)
    cc = np.einsum("ij,ij->i", oc, oc) - r * r
    hh = bb * bb - cc
    cap_hit = hit & ~body & (hh > 0)
    tc = -bb - np.sqrt(np.where(cap_hit, hh, 0.0))
    cap_hit &= tc > 0
    t[cap_hit] = tc[cap_hit]
    pos = ro + rd * np.where(np.isfinite(t), t, 0.0)[:, None]
    hproj = np.clip(((pos - a) @ ba) / baba, 0.0, 1.0)
    normal = (pos - a - hproj[:, None] * ba) / r
    return t, normal


# --------------------------------------------------------------------------------------------
# screen boxes (conservative): which pixels can see a capsule or its shadow
# --------------------------------------------------------------------------------------------
def _corners(a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    lo, hi = np.minimum(a, b) - r, np.maximum(a, b) + r
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def _screen_box(points_cam: np.ndarray, camera: Camera) -> tuple[float, float, float, float] | None:
    """Pixel box (x0, y0, x1, y1) holding the projection of the convex hull of the points (all in front of
    the camera: a convex set projects to the hull of its vertices' projections); None if any is not."""
    if (points_cam[:, 2] <= 1e-3).any():
        return None
    uv = camera.project(points_cam)
    lo, hi = uv.min(0), uv.max(0)
    return lo[0] - 1, lo[1] - 1, hi[0] + 1, hi[1] + 1


def _shadow_points(corners: np.ndarray, light_cam: np.ndarray, floor_plane) -> np.ndarray | None:
    """The corners moved along the light onto the floor (an affine map: the shadow of the box lies in the
    hull of these); None if the light does not travel toward the floor."""
    n_floor, p_floor = floor_plane
    ln = light_cam @ n_floor
    if ln >= -1e-6:
        return None
    s = ((p_floor - corners) @ n_floor) / ln
    return corners + s[:, None] * light_cam


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------
def render_frame(joints_cam: np.ndarray, background: np.ndarray, floor_plane: tuple[np.ndarray, np.ndarray],
                 light_cam: np.ndarray, camera: Camera, look: Look, supersample: int = 2) -> np.ndarray:
    """The mannequin of ``joints_cam`` (17, 3) over ``background`` (H, W, 3 BGR uint8, from
    ``background_image``), with its shadow on the floor (``floor_plane``: its normal and a point, camera
    space). ``light_cam``: the direction the light travels, camera space. Returns a new BGR frame."""
    img = background.copy()
    W, H = camera.width, camera.height
    cx, cy = camera.center
    ss = int(supersample)
    caps = capsules(np.asarray(joints_cam, float), look)
    light_cam = np.asarray(light_cam, float)
    to_light = -light_cam / np.linalg.norm(light_cam)

    full = (0.0, 0.0, float(W), float(H))
    boxes, shadow_boxes = [], []
    for a, b, r, _ in caps:
        corners = _corners(a, b, r)
        boxes.append(_screen_box(corners, camera) or full)
        sp = _shadow_points(corners, light_cam, floor_plane)
        shadow_boxes.append(None if sp is None else (_screen_box(sp, camera) or full))

    def clip(box):  # pixel box -> integer pixel bounds inside the frame (x0, y0, x1, y1); None if empty
        x0, y0 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
        x1, y1 = min(int(np.ceil(box[2])), W), min(int(np.ceil(box[3])), H)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    boxes = [clip(bx) for bx in boxes]
    shadow_boxes = [clip(bx) if bx is not None else None for bx in shadow_boxes]
    seen = [bx for bx in boxes + shadow_boxes if bx is not None]
    if not seen:
        return img
    x0, y0 = min(bx[0] for bx in seen), min(bx[1] for bx in seen)
    x1, y1 = max(bx[2] for bx in seen), max(bx[3] for bx in seen)
    h_px, w_px = y1 - y0, x1 - x0
    hs, ws = h_px * ss, w_px * ss

    ys, xs = np.mgrid[y0 * ss:y1 * ss, x0 * ss:x1 * ss]
    px = (xs + 0.5) / ss - cx
    py = (ys + 0.5) / ss - cy
    rd = np.stack([px, py, np.full_like(px, camera.focal, dtype=float)], -1)
    rd /= np.linalg.norm(rd, axis=-1, keepdims=True)  # (hs, ws, 3)
    ro = np.zeros(3)
    best_t = np.full((hs, ws), np.inf)
    colour = np.zeros((hs, ws, 3))
    normal = np.zeros((hs, ws, 3))

    def window(bx):  # a pixel box -> slices into the supersampled crop
        return (slice((bx[1] - y0) * ss, (bx[3] - y0) * ss), slice((bx[0] - x0) * ss, (bx[2] - x0) * ss))

    for (a, b, r, c), bx in zip(caps, boxes):
        if bx is None:
            continue
        sl = window(bx)
        sub = rd[sl]
        t, n = intersect_capsule(ro, sub.reshape(-1, 3), a, b, r)
        t, n = t.reshape(sub.shape[:2]), n.reshape(sub.shape)
        bt = best_t[sl]
        closer = t < bt
        bt[closer] = t[closer]
        colour[sl][closer] = c
        normal[sl][closer] = n[closer]

    rd = rd.reshape(-1, 3)
    best_t, colour, normal = best_t.reshape(-1), colour.reshape(-1, 3), normal.reshape(-1, 3)
    hit = np.isfinite(best_t)
    lambert = np.clip(normal[hit] @ to_light, 0.0, 1.0)
    view = -rd[hit]
    half = (to_light + view)
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    spec = np.clip(np.einsum("ij,ij->i", normal[hit], half), 0, 1) ** 24 * 0.25
    rim = (1 - np.clip(np.einsum("ij,ij->i", normal[hit], view), 0, 1)) ** 3 * 0.15
    shade = (0.35 + 0.7 * lambert)[:, None] * colour[hit] + (spec + rim)[:, None]

    # floor shadow: floor points whose ray toward the light hits the mannequin
    n_floor, p_floor = floor_plane
    denom = rd @ n_floor
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = (p_floor @ n_floor) / denom
    on_floor = (~hit & (t_floor > 0) & np.isfinite(t_floor)).reshape(hs, ws)
    t_floor = t_floor.reshape(hs, ws)
    rd_img = rd.reshape(hs, ws, 3)
    blocked = np.zeros((hs, ws), bool)
    for (a, b, r, _), bx in zip(caps, shadow_boxes):
        if bx is None:
            continue
        sl = window(bx)
        todo = on_floor[sl] & ~blocked[sl]
        if not todo.any():
            continue
        fp = rd_img[sl][todo] * t_floor[sl][todo, None]
        tt, _ = intersect_capsule(fp, to_light, a, b, r)  # rays from each floor point toward the light
        blk = blocked[sl]
        idx = np.nonzero(todo)
        hit_light = np.isfinite(tt)
        blk[idx[0][hit_light], idx[1][hit_light]] = True
    shadow = np.where(blocked.reshape(-1), look.shadow, 0.0)

    base = img[y0:y1, x0:x1].astype(float) / 255.0
    base_ss = np.repeat(np.repeat(base, ss, axis=0), ss, axis=1).reshape(-1, 3)
    out = base_ss * (1 - shadow[:, None])
    out[hit] = np.clip(shade[:, ::-1], 0, 1)  # RGB -> BGR
    out = out.reshape(h_px, ss, w_px, ss, 3).mean(axis=(1, 3))
    img[y0:y1, x0:x1] = np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)
    return img


def floor_plane(camera: Camera, look: Look) -> tuple[np.ndarray, np.ndarray]:
    """The floor in camera space: its normal and one of its points."""
    return camera.rotation @ np.array([0.0, 0.0, 1.0]), camera.to_camera(np.array([0.0, 0.0, look.floor_height]))


def background_image(camera: Camera, look: Look, supersample: int = 1) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The room without the mannequin, BGR uint8 (H, W, 3): a tiled floor (z = look.floor_height) and a back
    wall (or, without one, a plain backdrop above the horizon), shaded; and the floor plane in camera space
    (``floor_plane``). ``supersample`` > 1 averages that many rays per pixel side (distant tiles alias less)."""
    W, H, ss = camera.width, camera.height, int(supersample)
    cx, cy = camera.center
    ys, xs = np.mgrid[0:H * ss, 0:W * ss]
    rd_cam = np.stack([(xs + 0.5) / ss - cx, (ys + 0.5) / ss - cy, np.full(xs.shape, camera.focal)], -1).reshape(-1, 3)
    rd = rd_cam @ camera.rotation  # to world
    rd /= np.linalg.norm(rd, axis=1, keepdims=True)
    o = camera.position
    fz = look.floor_height
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = (fz - o[2]) / rd[:, 2]
        if look.wall_distance is not None:
            fwd = camera.rotation[2].copy()
            fwd[2] = 0.0
            fwd /= np.linalg.norm(fwd)
            t_wall = look.wall_distance / (rd @ fwd)
        else:
            t_wall = np.full(len(rd), -1.0)
    floor = (t_floor > 0) & ((t_floor < t_wall) | ~(t_wall > 0))
    fp = o + rd * np.where(floor, t_floor, 0)[:, None]
    tiles = ((np.floor(fp[:, 0] / look.tile) + np.floor(fp[:, 1] / look.tile)) % 2)
    dist = np.linalg.norm(fp - o, axis=1)
    falloff = np.maximum(1.05 - look.floor_falloff * dist, 0.5)
    floor_col = np.array(look.floor) * (0.92 + 0.08 * tiles)[:, None] * falloff[:, None]
    if look.wall_distance is not None:
        wp = o + rd * np.where(~floor, t_wall, 0)[:, None]
        wall_col = np.array(look.wall) * (0.85 + 0.1 * np.clip((wp[:, 2] - fz) / 3, 0, 1))[:, None]
        skirting = (~floor) & (wp[:, 2] - fz < 0.12)
        wall_col[skirting] = look.skirting
    else:  # a backdrop, a little lighter upward; the far floor fades into it (and its tiles alias less)
        wall_col = np.array(look.wall) * (0.85 + 0.1 * np.clip(rd[:, 2] * 3, 0, 1))[:, None]
        haze = 1.0 - np.exp(-dist / HAZE_DISTANCE)
        floor_col = floor_col * (1 - haze[:, None]) + np.array(look.wall)[None] * 0.85 * haze[:, None]
    img = np.where(floor[:, None], floor_col, wall_col)
    img = img.reshape(H, ss, W, ss, 3).mean(axis=(1, 3)) if ss > 1 else img.reshape(H, W, 3)
    img = np.clip(img[..., ::-1] * 255, 0, 255).astype(np.uint8)  # RGB -> BGR
    return img, floor_plane(camera, look)


__all__ = ["Camera", "Look", "background_image", "capsules", "floor_plane", "intersect_capsule", "look_at",
           "render_frame"]

"""Class names and label-map colours of the datasets oasis_tf knows, as data.

``dataset_classes(dataset, num_classes)`` gives ``(class_names, palette)`` for a
dataset name (a preset's ``data.dataset``, a generator's ``dataset``); every
front end (sample grids, ``oasis-generate``, the export's
``assets/oasis_export.json``, the studio) takes its names and colours from here.

* ``ade20k``: 151 = don't-care 0 + the 150 classes of the SceneParsing benchmark
  (objectInfo150 names, first synonym; ``color150`` colours of the CSAIL
  semantic-segmentation code). Two classes share a colour (road and skyscraper,
  140,140,140), as in that table.
* ``cityscapes``: the 35 ``labelIds`` of ``cityscapesscripts.helpers.labels``
  (ids 0..33, then "license plate", id -1 there, as 34) with their official colours.
  Several share a colour (0..4 black; pole / polegroup; car / license plate).
* ``coco_stuff``: 183 = unlabeled 0 (the 255 of the label PNGs) + the 182 ids of
  COCO-Stuff's labels.txt shifted by one (as the data pipeline maps them), 11 of
  them unused by COCO ("street sign", ...). Colours: the PASCAL VOC bit-interleaved
  colour map (``voc_colormap``), the usual one for label maps without official colours.
* ``synthetic``: the built-in procedural data set (``oasis_tf.data.synthetic``).

Other datasets (``folder``, unknown names or class counts) get ``class_0``, ... and
``voc_colormap`` (class 0 black).

Where colours repeat, a colour-coded label map cannot tell the classes apart:
``oasis_tf.images.labels_from_colors`` maps such a colour to the lowest class id.
"""

import numpy as np

# (name, (r, g, b)) per class id.
ADE20K = (
    ('unlabeled', (0, 0, 0)),  # 0
    ('wall', (120, 120, 120)),  # 1
    ('building', (180, 120, 120)),  # 2
    ('sky', (6, 230, 230)),  # 3
    ('floor', (80, 50, 50)),  # 4
    ('tree', (4, 200, 3)),  # 5
    ('ceiling', (120, 120, 80)),  # 6
    ('road', (140, 140, 140)),  # 7
    ('bed', (204, 5, 255)),  # 8
    ('windowpane', (230, 230, 230)),  # 9
    ('grass', (4, 250, 7)),  # 10
    ('cabinet', (224, 5, 255)),  # 11
    ('sidewalk', (235, 255, 7)),  # 12
    ('person', (150, 5, 61)),  # 13
    ('earth', (120, 120, 70)),  # 14
    ('door', (8, 255, 51)),  # 15
    ('table', (255, 6, 82)),  # 16
    ('mountain', (143, 255, 140)),  # 17
    ('plant', (204, 255, 4)),  # 18
    ('curtain', (255, 51, 7)),  # 19
    ('chair', (204, 70, 3)),  # 20
    ('car', (0, 102, 200)),  # 21
    ('water', (61, 230, 250)),  # 22
    ('painting', (255, 6, 51)),  # 23
    ('sofa', (11, 102, 255)),  # 24
    ('shelf', (255, 7, 71)),  # 25
    ('house', (255, 9, 224)),  # 26
    ('sea', (9, 7, 230)),  # 27
    ('mirror', (220, 220, 220)),  # 28
    ('rug', (255, 9, 92)),  # 29
    ('field', (112, 9, 255)),  # 30
    ('armchair', (8, 255, 214)),  # 31
    ('seat', (7, 255, 224)),  # 32
    ('fence', (255, 184, 6)),  # 33
    ('desk', (10, 255, 71)),  # 34
    ('rock', (255, 41, 10)),  # 35
    ('wardrobe', (7, 255, 255)),  # 36
    ('lamp', (224, 255, 8)),  # 37
    ('bathtub', (102, 8, 255)),  # 38
    ('railing', (255, 61, 6)),  # 39
    ('cushion', (255, 194, 7)),  # 40
    ('base', (255, 122, 8)),  # 41
    ('box', (0, 255, 20)),  # 42
    ('column', (255, 8, 41)),  # 43
    ('signboard', (255, 5, 153)),  # 44
    ('chest', (6, 51, 255)),  # 45
    ('counter', (235, 12, 255)),  # 46
    ('sand', (160, 150, 20)),  # 47
    ('sink', (0, 163, 255)),  # 48
    ('skyscraper', (140, 140, 140)),  # 49
    ('fireplace', (250, 10, 15)),  # 50
    ('refrigerator', (20, 255, 0)),  # 51
    ('grandstand', (31, 255, 0)),  # 52
    ('path', (255, 31, 0)),  # 53
    ('stairs', (255, 224, 0)),  # 54
    ('runway', (153, 255, 0)),  # 55
    ('case', (0, 0, 255)),  # 56
    ('pool', (255, 71, 0)),  # 57
    ('pillow', (0, 235, 255)),  # 58
    ('screen door', (0, 173, 255)),  # 59
    ('stairway', (31, 0, 255)),  # 60
    ('river', (11, 200, 200)),  # 61
    ('bridge', (255, 82, 0)),  # 62
    ('bookcase', (0, 255, 245)),  # 63
    ('blind', (0, 61, 255)),  # 64
    ('coffee', (0, 255, 112)),  # 65
    ('toilet', (0, 255, 133)),  # 66
    ('flower', (255, 0, 0)),  # 67
    ('book', (255, 163, 0)),  # 68
    ('hill', (255, 102, 0)),  # 69
    ('bench', (194, 255, 0)),  # 70
    ('countertop', (0, 143, 255)),  # 71
    ('stove', (51, 255, 0)),  # 72
    ('palm', (0, 82, 255)),  # 73
    ('kitchen', (0, 255, 41)),  # 74
    ('computer', (0, 255, 173)),  # 75
    ('swivel', (10, 0, 255)),  # 76
    ('boat', (173, 255, 0)),  # 77
    ('bar', (0, 255, 153)),  # 78
    ('arcade', (255, 92, 0)),  # 79
    ('hovel', (255, 0, 255)),  # 80
    ('bus', (255, 0, 245)),  # 81
    ('towel', (255, 0, 102)),  # 82
    ('light', (255, 173, 0)),  # 83
    ('truck', (255, 0, 20)),  # 84
    ('tower', (255, 184, 184)),  # 85
    ('chandelier', (0, 31, 255)),  # 86
    ('awning', (0, 255, 61)),  # 87
    ('streetlight', (0, 71, 255)),  # 88
    ('booth', (255, 0, 204)),  # 89
    ('television', (0, 255, 194)),  # 90
    ('airplane', (0, 255, 82)),  # 91
    ('dirt', (0, 10, 255)),  # 92
    ('apparel', (0, 112, 255)),  # 93
    ('pole', (51, 0, 255)),  # 94
    ('land', (0, 194, 255)),  # 95
    ('bannister', (0, 122, 255)),  # 96
    ('escalator', (0, 255, 163)),  # 97
    ('ottoman', (255, 153, 0)),  # 98
    ('bottle', (0, 255, 10)),  # 99
    ('buffet', (255, 112, 0)),  # 100
    ('poster', (143, 255, 0)),  # 101
    ('stage', (82, 0, 255)),  # 102
    ('van', (163, 255, 0)),  # 103
    ('ship', (255, 235, 0)),  # 104
    ('fountain', (8, 184, 170)),  # 105
    ('conveyer', (133, 0, 255)),  # 106
    ('canopy', (0, 255, 92)),  # 107
    ('washer', (184, 0, 255)),  # 108
    ('plaything', (255, 0, 31)),  # 109
    ('swimming', (0, 184, 255)),  # 110
    ('stool', (0, 214, 255)),  # 111
    ('barrel', (255, 0, 112)),  # 112
    ('basket', (92, 255, 0)),  # 113
    ('waterfall', (0, 224, 255)),  # 114
    ('tent', (112, 224, 255)),  # 115
    ('bag', (70, 184, 160)),  # 116
    ('minibike', (163, 0, 255)),  # 117
    ('cradle', (153, 0, 255)),  # 118
    ('oven', (71, 255, 0)),  # 119
    ('ball', (255, 0, 163)),  # 120
    ('food', (255, 204, 0)),  # 121
    ('step', (255, 0, 143)),  # 122
    ('tank', (0, 255, 235)),  # 123
    ('trade', (133, 255, 0)),  # 124
    ('microwave', (255, 0, 235)),  # 125
    ('pot', (245, 0, 255)),  # 126
    ('animal', (255, 0, 122)),  # 127
    ('bicycle', (255, 245, 0)),  # 128
    ('lake', (10, 190, 212)),  # 129
    ('dishwasher', (214, 255, 0)),  # 130
    ('screen', (0, 204, 255)),  # 131
    ('blanket', (20, 0, 255)),  # 132
    ('sculpture', (255, 255, 0)),  # 133
    ('hood', (0, 153, 255)),  # 134
    ('sconce', (0, 41, 255)),  # 135
    ('vase', (0, 255, 204)),  # 136
    ('traffic', (41, 0, 255)),  # 137
    ('tray', (41, 255, 0)),  # 138
    ('ashcan', (173, 0, 255)),  # 139
    ('fan', (0, 245, 255)),  # 140
    ('pier', (71, 0, 255)),  # 141
    ('crt screen', (122, 0, 255)),  # 142
    ('plate', (0, 255, 184)),  # 143
    ('monitor', (0, 92, 255)),  # 144
    ('bulletin', (184, 255, 0)),  # 145
    ('shower', (0, 133, 255)),  # 146
    ('radiator', (255, 214, 0)),  # 147
    ('glass', (25, 194, 194)),  # 148
    ('clock', (102, 255, 0)),  # 149
    ('flag', (92, 0, 255)),  # 150
)

# (name, (r, g, b)) per labelId (34 = license plate, id -1 in cityscapesscripts).
CITYSCAPES = (
    ('unlabeled', (0, 0, 0)),  # 0
    ('ego vehicle', (0, 0, 0)),  # 1
    ('rectification border', (0, 0, 0)),  # 2
    ('out of roi', (0, 0, 0)),  # 3
    ('static', (0, 0, 0)),  # 4
    ('dynamic', (111, 74, 0)),  # 5
    ('ground', (81, 0, 81)),  # 6
    ('road', (128, 64, 128)),  # 7
    ('sidewalk', (244, 35, 232)),  # 8
    ('parking', (250, 170, 160)),  # 9
    ('rail track', (230, 150, 140)),  # 10
    ('building', (70, 70, 70)),  # 11
    ('wall', (102, 102, 156)),  # 12
    ('fence', (190, 153, 153)),  # 13
    ('guard rail', (180, 165, 180)),  # 14
    ('bridge', (150, 100, 100)),  # 15
    ('tunnel', (150, 120, 90)),  # 16
    ('pole', (153, 153, 153)),  # 17
    ('polegroup', (153, 153, 153)),  # 18
    ('traffic light', (250, 170, 30)),  # 19
    ('traffic sign', (220, 220, 0)),  # 20
    ('vegetation', (107, 142, 35)),  # 21
    ('terrain', (152, 251, 152)),  # 22
    ('sky', (70, 130, 180)),  # 23
    ('person', (220, 20, 60)),  # 24
    ('rider', (255, 0, 0)),  # 25
    ('car', (0, 0, 142)),  # 26
    ('truck', (0, 0, 70)),  # 27
    ('bus', (0, 60, 100)),  # 28
    ('caravan', (0, 0, 90)),  # 29
    ('trailer', (0, 0, 110)),  # 30
    ('train', (0, 80, 100)),  # 31
    ('motorcycle', (0, 0, 230)),  # 32
    ('bicycle', (119, 11, 32)),  # 33
    ('license plate', (0, 0, 142)),  # 34
)

# COCO-Stuff names by class id (0 = unlabeled, i = labels.txt id i).
COCO_STUFF_NAMES = (
    'unlabeled', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck',
    'boat', 'traffic light', 'fire hydrant', 'street sign', 'stop sign', 'parking meter',
    'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra',
    'giraffe', 'hat', 'backpack', 'umbrella', 'shoe', 'eye glasses', 'handbag', 'tie',
    'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat',
    'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle', 'plate',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich',
    'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
    'potted plant', 'bed', 'mirror', 'dining table', 'window', 'desk', 'toilet', 'door', 'tv',
    'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster',
    'sink', 'refrigerator', 'blender', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush', 'hair brush', 'banner', 'blanket', 'branch', 'bridge',
    'building-other', 'bush', 'cabinet', 'cage', 'cardboard', 'carpet', 'ceiling-other',
    'ceiling-tile', 'cloth', 'clothes', 'clouds', 'counter', 'cupboard', 'curtain',
    'desk-stuff', 'dirt', 'door-stuff', 'fence', 'floor-marble', 'floor-other', 'floor-stone',
    'floor-tile', 'floor-wood', 'flower', 'fog', 'food-other', 'fruit', 'furniture-other',
    'grass', 'gravel', 'ground-other', 'hill', 'house', 'leaves', 'light', 'mat', 'metal',
    'mirror-stuff', 'moss', 'mountain', 'mud', 'napkin', 'net', 'paper', 'pavement', 'pillow',
    'plant-other', 'plastic', 'platform', 'playingfield', 'railing', 'railroad', 'river',
    'road', 'rock', 'roof', 'rug', 'salad', 'sand', 'sea', 'shelf', 'sky-other', 'skyscraper',
    'snow', 'solid-other', 'stairs', 'stone', 'straw', 'structural-other', 'table', 'tent',
    'textile-other', 'towel', 'tree', 'vegetable', 'wall-brick', 'wall-concrete', 'wall-other',
    'wall-panel', 'wall-stone', 'wall-tile', 'wall-wood', 'water-other', 'waterdrops',
    'window-blind', 'window-other', 'wood',
)

# The synthetic data set's classes (oasis_tf.data.synthetic draws them in this order).
SYNTHETIC = (
    ("dont_care", (0, 0, 0)),  # 0: ignored by the losses (thin borders, specks)
    ("sky", (70, 130, 180)),
    ("cloud", (220, 220, 230)),
    ("mountain", (120, 90, 140)),
    ("grass", (60, 170, 60)),
    ("sand", (230, 200, 120)),
    ("water", (30, 60, 200)),
    ("building", (180, 60, 60)),
    ("roof", (250, 120, 30)),
    ("tree", (20, 90, 20)),
    ("trunk", (110, 70, 30)),
    ("rock", (150, 150, 150)),
)


def voc_colormap(num_classes):
    """The PASCAL VOC colour map, uint8 [num_classes, 3] (class 0 black).

    Class ``i``'s bits 0, 1, 2 go to the top bits of red, green and blue, bits 3, 4, 5
    to the next ones, and so on.
    """
    cmap = np.zeros((int(num_classes), 3), np.uint8)
    for i in range(int(num_classes)):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def default_class_names(num_classes):
    """``class_0``, ``class_1``, ...: the names of a dataset without a table."""
    return [f"class_{i}" for i in range(int(num_classes))]


def _from_table(table):
    return [n for n, _ in table], np.array([c for _, c in table], np.uint8)


def _coco_stuff():
    return list(COCO_STUFF_NAMES), voc_colormap(len(COCO_STUFF_NAMES))


DATASETS = {
    "ade20k": lambda: _from_table(ADE20K),
    "cityscapes": lambda: _from_table(CITYSCAPES),
    "coco_stuff": _coco_stuff,
    "synthetic": lambda: _from_table(SYNTHETIC),
}


def dataset_classes(dataset, num_classes):
    """``(class_names, palette)`` of a dataset: a list of ``num_classes`` str and
    uint8 [num_classes, 3].

    Args:
        dataset: "ade20k", "cityscapes", "coco_stuff", "synthetic", a
            ``tfds:oasis_<name>`` name, or anything else / None (generic names and
            ``voc_colormap``).
        num_classes: the model's class count. When it differs from the dataset's
            table (a model trained on a subset), the generic names and colours are
            used.
    """
    num_classes = int(num_classes)
    key = str(dataset or "")
    if key.startswith("tfds:"):
        key = key[len("tfds:"):]
        key = key[len("oasis_"):] if key.startswith("oasis_") else key
    if key in DATASETS:
        names, palette = DATASETS[key]()
        if len(names) == num_classes:
            return names, palette
    return default_class_names(num_classes), voc_colormap(num_classes)

"""One table of actions: id, text, shortcut, icon (qtawesome), tip. Menus and toolbars read it."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence


@dataclass(frozen=True)
class ActionSpec:
    id: str
    text: str
    shortcut: str | QKeySequence.StandardKey | None = None
    icon: str | None = None
    tip: str = ""
    checkable: bool = False


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open", "&Open…", QKeySequence.StandardKey.Open, "fa6s.folder-open",
               "Open a project (.semstudio) or a label map (indexed, grey-id or colour-coded PNG)"),
    ActionSpec("save_project", "&Save Project", QKeySequence.StandardKey.Save, "fa6s.floppy-disk",
               "Save everything (labels, photo, result, settings) as a .semstudio project"),
    ActionSpec("save_project_as", "Save Project &As…", QKeySequence.StandardKey.SaveAs, None, ""),
    ActionSpec("open_labels", "&Import Label Map…", "Ctrl+Shift+L", "fa6s.file-import",
               "Import labels: indexed PNG, dataset ids (Cityscapes, ADE20K, COCO-Stuff), Cityscapes "
               "instanceIds, colour-coded PNG or labelme JSON"),
    ActionSpec("new_from_photo", "&New from Photo…", "Ctrl+Shift+N", "fa6s.file-image",
               "Start a project on a photo: the canvas takes its size, labels start empty (then Auto-label)"),
    ActionSpec("open_photo", "Open &Photo…", "Ctrl+Shift+O", "fa6s.image", "Show a photo under the labels"),
    ActionSpec("save_labels", "Export &Label Map", None, None, "Save the label map as an indexed PNG"),
    ActionSpec("save_labels_as", "Export Label Map &As…", "Ctrl+Shift+E", None,
               "Export labels, instances or edges: indexed, dataset ids, colours, Cityscapes instanceIds, "
               "16-bit instances, edges"),
    ActionSpec("convert_labelset", "Convert Label &Set…", None, "fa6s.right-left",
               "Switch to another label set with an explicit class-by-class mapping (undoable)"),
    ActionSpec("export_result", "&Export Result…", "Ctrl+E", "fa6s.file-export", "Save the generated image"),
    ActionSpec("models", "&Models…", "Ctrl+Shift+M", "fa6s.cubes",
               "Bundled and imported models: state, card, import, models folder, unload all"),
    ActionSpec("preferences", "P&references…", QKeySequence.StandardKey.Preferences, "fa6s.gear",
               "Device, memory budgets, models folder, autosave interval, shortcuts"),
    ActionSpec("quit", "&Quit", QKeySequence.StandardKey.Quit, None, ""),
    ActionSpec("undo", "&Undo", QKeySequence.StandardKey.Undo, "fa6s.rotate-left", ""),
    ActionSpec("redo", "&Redo", QKeySequence.StandardKey.Redo, "fa6s.rotate-right", ""),
    ActionSpec("tool_brush", "&Brush", "B", "fa6s.paintbrush", "Paint the current class (hard-edged)", True),
    ActionSpec("tool_eraser", "&Eraser", "E", "fa6s.eraser", "Paint void", True),
    ActionSpec("tool_fill", "&Fill", "G", "fa6s.fill-drip", "Fill a region with the current class", True),
    ActionSpec("tool_picker", "Eye&dropper", "I", "fa6s.eye-dropper", "Pick a class (or hold Alt)", True),
    ActionSpec("tool_line", "&Line", "L", "fa6s.pen-ruler", "Drag a straight stroke of the brush width", True),
    ActionSpec("tool_polygon", "&Polygon Fill", "P", "fa6s.draw-polygon",
               "Click corners; double-click or Enter fills, Esc cancels", True),
    ActionSpec("tool_lasso", "L&asso Fill", "F", "fa6s.bezier-curve", "Draw round a region; releasing fills it", True),
    ActionSpec("tool_select", "&Smart Select", "S", "fa6s.object-group",
               "Drag a rectangle round an object in the photo: GrabCut fills it with the current class", True),
    ActionSpec("tool_merge", "&Merge Instances", "M", "fa6s.object-ungroup",
               "Click the instance to keep, then the instances to join to it", True),
    ActionSpec("tool_split", "Spli&t Instance", "X", "fa6s.scissors",
               "Drag a line across an instance to cut it in two; a click splits it into its separate parts", True),
    ActionSpec("tool_sketch", "S&ketch Brush", "K", "fa6s.pencil",
               "Draw edges / sketch lines on the edge layer (the eraser removes them)", True),
    ActionSpec("new_instance", "&New Instance", "N", "fa6s.plus",
               "Start a new object: strokes of thing classes (car, person…) get a fresh instance id"),
    ActionSpec("show_instances", "Show &Instance Outlines", "O", "fa6s.vector-square",
               "Show the instance layer (outlines and tints)", True),
    ActionSpec("layer_labels", "Paint on &Labels", "Ctrl+1", None, "Brushes paint classes", False),
    ActionSpec("layer_instances", "Paint on &Instances", "Ctrl+2", None, "Brushes paint instance ids", False),
    ActionSpec("layer_edges", "Paint on &Edges", "Ctrl+3", None, "Brushes paint the edge / sketch layer", False),
    ActionSpec("favourite", "Toggle &Favourite Class", "Ctrl+D", "fa6s.star",
               "Add the current class to the favourites at the top of the palette, or remove it"),
    ActionSpec("brush_square", "Square Brush", "Shift+B", "fa6s.square", "Square instead of round brush tip", True),
    ActionSpec("preserve_void", "Paint Over Void Only", "Shift+P", "fa6s.lock",
               "Preserve labels: brushes, lines and fills change only void pixels", True),
    ActionSpec("preserve_class", "Paint Over Picked Class Only", "Shift+O", "fa6s.lock-open",
               "Preserve labels: change only pixels of the class current when this is switched on", True),
    ActionSpec("fill_global", "Global Fill", None, "fa6s.globe",
               "Fill replaces every pixel of the clicked class, not only the connected region", True),
    ActionSpec("brush_smaller", "Smaller Brush", "[", None, ""),
    ActionSpec("brush_larger", "Larger Brush", "]", None, ""),
    ActionSpec("zoom_in", "Zoom &In", QKeySequence.StandardKey.ZoomIn, "fa6s.magnifying-glass-plus", ""),
    ActionSpec("zoom_out", "Zoom &Out", QKeySequence.StandardKey.ZoomOut, "fa6s.magnifying-glass-minus", ""),
    ActionSpec("zoom_fit", "&Fit to Window", "Ctrl+0", "fa6s.expand", ""),
    ActionSpec("show_result", "Show Result &Layer", "R", "fa6s.layer-group",
               "Show the generated image on the canvas", True),
    ActionSpec("generate", "&Generate", "Ctrl+Return", "fa6s.wand-magic-sparkles",
               "Generate a photo from the label map"),
    ActionSpec("auto_label", "&Auto-label Photo", "Ctrl+Shift+A", "fa6s.wand-sparkles",
               "Label the photo's street classes with the bundled segmenter (undoable)"),
    ActionSpec("regen_region", "Regenerate &Changed Region", "Ctrl+Shift+Return", "fa6s.crop-simple",
               "Regenerate only where the labels changed since the photo was labelled; the rest of the photo "
               "stays exactly as it was (hold Tab to compare before/after)"),
    ActionSpec("cancel_jobs", "&Cancel", "Escape", "fa6s.ban", "Cancel the generation in progress"),
    ActionSpec("live", "&Live Preview", "Ctrl+L", "fa6s.bolt",
               "Regenerate automatically after each edit (debounced)", True),
) + tuple(ActionSpec(f"favourite_{n}", f"Favourite Class {n}", str(n), None, f"Paint with favourite class {n}")
          for n in range(1, 10))


def make_actions(parent, icons: bool = True) -> dict[str, QAction]:
    out = {}
    qta = None
    if icons:
        try:
            import qtawesome as qta  # noqa: F811
        except Exception:  # noqa: BLE001 - icons are optional decoration
            qta = None
    for spec in ACTIONS:
        a = QAction(spec.text, parent)
        if spec.shortcut is not None:
            a.setShortcut(QKeySequence(spec.shortcut))
        if spec.tip:
            a.setToolTip(f"{spec.tip} ({a.shortcut().toString()})" if spec.shortcut else spec.tip)
            a.setStatusTip(spec.tip)
        a.setCheckable(spec.checkable)
        if qta is not None and spec.icon:
            try:
                a.setIcon(qta.icon(spec.icon))
            except Exception:  # noqa: BLE001
                pass
        a.setObjectName(spec.id)
        out[spec.id] = a
    return out

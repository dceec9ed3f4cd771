"""The lyra_isaac Kit extension for Isaac Sim 6.x: a *Tools > Robotics > Lyra Worlds* menu and a small window.

Menu items (each also a Kit action of this extension):

- *Import Generated World...*: pick a splat PLY, a Lyra output folder (``reconstructed_scene.ply`` +
  ``cameras.npz``) or a converted world directory (``world.json``). Splat scenes are converted in a worker thread
  by :func:`lyra_isaac.convert.convert` (the function behind ``lyra-isaac convert``) with a progress bar and a
  Cancel button; the world's ``world.usda`` is then added as a payload under ``/World/LyraWorlds/<name>``.
- *Batch Convert Folder...*: every Lyra folder / PLY in a folder, through :func:`lyra_isaac.batch.run.run_batch`.
- *Add Humanoid*: a Unitree H1 or G1 from Isaac Sim's asset library at the world's next spawn point.
- *Open Last World*: open the last imported world's ``world.usda`` as the stage.
- *Options*: the window (preset, scale, camera height, output folder, robot).

Errors (not a splat scene or world, failed conversion, unreachable robot asset) go to a notification, the window's
status line and the carb log; the stage is left as it was. The logic without UI lives in
:mod:`lyra_isaac.isaac.importer` (tested outside Kit); this module only wires it to Kit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from pathlib import Path

from ..errors import CancelledError as LyraCancelledError
from ..errors import InputError, LyraError
from ..progress import Progress
from ..world import WORLD_JSON, WorldDir, load_world
from .importer import (
    PRESETS,
    ROBOTS_ROOT_PRIM,
    WORLDS_ROOT_PRIM,
    ConversionOptions,
    SpawnCycler,
    batch_inputs,
    classify_source,
    import_world,
    output_root,
    picked_path,
    picker_shows,
    plan_world_reference,
    stage_correction,
)
from .robots import ROBOTS, robot_spec
from .usd_robot import prepare_robot_prim

KIT_REQUIRED_MESSAGE = (
    "lyra_isaac.isaac.extension is the Isaac Sim extension and runs only inside Isaac Sim / Omniverse Kit "
    "(Isaac Sim 6.x, Python 3.12): enable the 'lyra_isaac' extension there (see docs/isaac_sim.md). Outside Isaac "
    "Sim use the `lyra-isaac` command or `lyra_isaac.convert.convert()`"
)

try:
    import carb
    import carb.settings
    import omni.client
    import omni.ext
    import omni.kit.actions.core
    import omni.kit.app
    import omni.ui as ui
    import omni.usd
    from omni.kit.menu.utils import MenuItemDescription, add_menu_items, remove_menu_items
    from omni.kit.notification_manager import NotificationStatus, post_notification
    from omni.kit.window.filepicker import FilePickerDialog
    from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics
except ImportError as _exc:  # outside Kit: one clear message instead of a chain of missing modules
    raise ImportError(f"{KIT_REQUIRED_MESSAGE} (could not import '{_exc.name}')") from None


logger = logging.getLogger(__name__)

WINDOW_TITLE = "Lyra Worlds"
MENU_PARENT = "Tools"
MENU_GROUP = "Robotics"
"""Isaac Sim's own tools sit under *Tools > Robotics* (e.g. isaacsim.robot.poser.ui)."""
MENU_TITLE = "Lyra Worlds"
LAST_WORLD_KEY = "last_world"
"""Persistent setting /persistent/exts/<extension name>/last_world: the last imported world directory."""
WORLD_DIR_KEY = "lyra_isaac:world_dir"
"""customData key on each world prim: the world directory it came from (Add Humanoid reads the spawn points)."""
ROBOT_NAMES = tuple(sorted(ROBOTS))
LABEL_WIDTH = 130

# action id -> (menu label, method name)
ACTIONS = {
    "import_world": ("Import Generated World...", "show_import_picker"),
    "batch_convert": ("Batch Convert Folder...", "show_batch_picker"),
    "add_humanoid": ("Add Humanoid", "add_humanoid"),
    "open_last_world": ("Open Last World", "open_last_world"),
    "show_window": ("Options...", "show_window"),
}


_INSTANCE: LyraWorldsExtension | None = None


def get_instance() -> LyraWorldsExtension | None:
    """The running extension (None when it is not enabled); for scripts and the Kit tests."""
    return _INSTANCE


class _ProgressState:
    """The latest (stage, fraction) a worker thread reported; read by the UI loop (never touch omni.ui off it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = ("", 0.0)

    def update(self, stage: str, fraction: float) -> None:
        with self._lock:
            self._value = (stage, fraction)

    def get(self) -> tuple[str, float]:
        with self._lock:
            return self._value


class LyraWorldsExtension(omni.ext.IExt):
    """Menu, window and background conversion of generated worlds."""

    # ----------------------------------------------------------------------------------------------- lifecycle
    def on_startup(self, ext_id: str) -> None:
        self._ext_id = ext_id
        self._ext_name = omni.ext.get_extension_name(ext_id)
        self._settings = carb.settings.get_settings()
        self._last_world_setting = f"/persistent/exts/{self._ext_name}/{LAST_WORLD_KEY}"
        self._cycler = SpawnCycler()
        self._worlds: dict[str, WorldDir] = {}
        self._last_world_prim: str | None = None
        self._task: asyncio.Future | None = None
        self._task_humanoid: asyncio.Future | None = None
        self._progress: Progress | None = None
        self._state = _ProgressState()
        self._dialogs: list[FilePickerDialog] = []
        self._build_window()
        registry = omni.kit.actions.core.get_action_registry()
        for action_id, (label, method) in ACTIONS.items():
            registry.register_action(self._ext_name, action_id, getattr(self, method), display_name=label,
                                     description=f"Lyra Worlds: {label}")
        entries = [MenuItemDescription(name=label, onclick_action=(self._ext_name, action_id))
                   for action_id, (label, _) in ACTIONS.items()]
        self._menu_items = [MenuItemDescription(name=MENU_GROUP, sub_menu=[
            MenuItemDescription(name=MENU_TITLE, sub_menu=entries)])]
        add_menu_items(self._menu_items, MENU_PARENT)
        global _INSTANCE
        _INSTANCE = self

    def on_shutdown(self) -> None:
        global _INSTANCE
        _INSTANCE = None
        if self._progress is not None:
            self._progress.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._task_humanoid is not None and not self._task_humanoid.done():
            self._task_humanoid.cancel()
        self._task = self._task_humanoid = None
        remove_menu_items(self._menu_items, MENU_PARENT)
        self._menu_items = []
        omni.kit.actions.core.get_action_registry().deregister_all_actions_for_extension(self._ext_name)
        for dialog in self._dialogs:
            dialog.destroy()
        self._dialogs = []
        if self._window is not None:
            self._window.destroy()
            self._window = None

    # ------------------------------------------------------------------------------------------------------ UI
    def _setting(self, key: str, default):
        # Kit names an extension after its folder, so the settings path follows the folder name (normally lyra_isaac).
        value = self._settings.get(f"/exts/{self._ext_name}/{key}")
        return default if value is None else value

    def _build_window(self) -> None:
        preset = str(self._setting("conversion_preset", "fast"))
        robot = str(self._setting("default_robot", "h1")).lower()
        self._window = ui.Window(WINDOW_TITLE, width=480, height=330, visible=False)
        with self._window.frame:
            with ui.VStack(spacing=4, height=0):
                with ui.HStack(height=22):
                    ui.Label("Preset", width=LABEL_WIDTH)
                    self._preset_combo = ui.ComboBox(PRESETS.index(preset) if preset in PRESETS else 0, *PRESETS)
                with ui.HStack(height=22):
                    ui.Label("Scale (empty: file)", width=LABEL_WIDTH)
                    self._scale_field = ui.StringField()
                with ui.HStack(height=22):
                    ui.Label("Camera height (m)", width=LABEL_WIDTH)
                    self._camera_height_field = ui.StringField()
                with ui.HStack(height=22):
                    ui.Label("Output folder", width=LABEL_WIDTH)
                    self._output_field = ui.StringField()
                    self._output_field.model.set_value(str(output_root(self._setting("output_folder", ""))))
                with ui.HStack(height=22):
                    ui.Label("Overwrite", width=LABEL_WIDTH)
                    self._overwrite_box = ui.CheckBox()
                    self._overwrite_box.model.set_value(bool(self._setting("overwrite", False)))
                with ui.HStack(height=22):
                    ui.Label("Humanoid", width=LABEL_WIDTH)
                    self._robot_combo = ui.ComboBox(ROBOT_NAMES.index(robot) if robot in ROBOT_NAMES else 0,
                                                    *[ROBOTS[n].title for n in ROBOT_NAMES])
                with ui.HStack(height=26, spacing=4):
                    ui.Button("Import Generated World...", clicked_fn=self.show_import_picker)
                    ui.Button("Batch Convert Folder...", clicked_fn=self.show_batch_picker)
                with ui.HStack(height=26, spacing=4):
                    ui.Button("Add Humanoid", clicked_fn=self.add_humanoid)
                    ui.Button("Open Last World", clicked_fn=self.open_last_world)
                with ui.HStack(height=22, spacing=4):
                    self._progress_bar = ui.ProgressBar()
                    self._cancel_button = ui.Button("Cancel", width=70, enabled=False, clicked_fn=self.cancel)
                self._status_label = ui.Label("", word_wrap=True)

    def show_window(self) -> None:
        """Show the options window."""
        self._window.visible = True

    def _read_options(self) -> ConversionOptions:
        options = ConversionOptions(
            preset=PRESETS[self._preset_combo.model.get_item_value_model().as_int],
            scale=ConversionOptions.parse_optional_float(self._scale_field.model.get_value_as_string(), "scale"),
            camera_height=ConversionOptions.parse_optional_float(
                self._camera_height_field.model.get_value_as_string(), "camera height"),
            output_root=output_root(self._output_field.model.get_value_as_string()),
            overwrite=self._overwrite_box.model.get_value_as_bool(),
        )
        options.validate()
        return options

    def _robot_name(self) -> str:
        return ROBOT_NAMES[self._robot_combo.model.get_item_value_model().as_int]

    def _status(self, text: str) -> None:
        carb.log_info(f"[lyra_isaac] {text}")
        self._status_label.text = text

    def _report_error(self, what: str, exc: BaseException) -> None:
        """Show a failure in the window, a notification and the carb log."""
        if isinstance(exc, LyraError):
            text = f"{what} failed: {exc}"
            carb.log_error(f"[lyra_isaac] {text}")
        else:
            text = f"{what} failed with an unexpected {type(exc).__name__}: {exc} (details in the log)"
            carb.log_error(f"[lyra_isaac] {text}\n{''.join(traceback.format_exception(exc))}")
        self._status_label.text = text
        post_notification(text, hide_after_timeout=False, status=NotificationStatus.WARNING)

    def _busy(self) -> bool:
        if self._task is not None and not self._task.done():
            post_notification("Lyra Worlds: a conversion is running; wait or cancel it first",
                              status=NotificationStatus.WARNING)
            return True
        return False

    def _pick(self, title: str, apply_label: str, on_path, filter_fn=None) -> None:
        def apply(filename: str, dirname: str) -> None:
            dialog.hide()
            on_path(picked_path(filename, dirname))

        dialog = FilePickerDialog(
            title,
            apply_button_label=apply_label,
            click_apply_handler=apply,
            click_cancel_handler=lambda filename, dirname: dialog.hide(),
            item_filter_fn=filter_fn,
        )
        self._dialogs.append(dialog)
        dialog.show()

    # ------------------------------------------------------------------------------------------------- import
    def show_import_picker(self) -> None:
        """Menu: pick a splat PLY, Lyra output folder or world directory, then import it."""
        if self._busy():
            return
        self._pick("Import Generated World (splat PLY, Lyra output folder or world folder)", "Import",
                   self.import_path, lambda item: item is not None and picker_shows(item.path, item.is_folder))

    def import_path(self, path: str) -> asyncio.Future | None:
        """Import ``path`` (converting it first unless it is a world); returns the running task."""
        if self._busy():
            return None
        try:
            classify_source(path)
            options = self._read_options()
        except LyraError as exc:
            self._report_error("Import", exc)
            return None
        self._task = asyncio.ensure_future(self._import_async(path, options))
        return self._task

    async def _run_in_thread(self, what: str, fn, *args):
        """Run ``fn(*args, progress)`` in a worker thread while the progress bar follows it; None on failure."""
        progress = Progress(self._state.update)
        self._progress = progress
        self._state.update(what, 0.0)
        self._cancel_button.enabled = True
        future = asyncio.get_event_loop().run_in_executor(None, fn, *args, progress)
        app = omni.kit.app.get_app()
        try:
            while not future.done():
                stage, fraction = self._state.get()
                self._progress_bar.model.set_value(fraction)
                self._status_label.text = f"{what}: {stage} ({fraction:.0%})"
                await app.next_update_async()
            return future.result()
        except LyraCancelledError:
            self._status(f"{what} cancelled; nothing was written")
            return None
        except asyncio.CancelledError:  # extension shutting down
            progress.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is shown, never swallowed silently
            self._report_error(what, exc)
            return None
        finally:
            self._progress = None
            self._cancel_button.enabled = False
            self._progress_bar.model.set_value(0.0)

    async def _import_async(self, path: str, options: ConversionOptions) -> None:
        world = await self._run_in_thread("Import", import_world, path, options)
        if world is None:
            return
        try:
            prim_path = self.reference_world(world)
        except Exception as exc:  # noqa: BLE001
            self._report_error("Adding the world to the stage", exc)
            return
        self._settings.set(self._last_world_setting, str(world.path))
        self._status(f"Imported {world.path.name} at {prim_path} ({len(world.spawn_points)} spawn points)")
        post_notification(f"Lyra Worlds: imported {world.path.name}", status=NotificationStatus.INFO)

    def cancel(self) -> None:
        """Cancel the running conversion (it stops at its next progress update; nothing is written)."""
        if self._progress is not None:
            self._progress.cancel()
            self._status("cancelling...")

    def reference_world(self, world: WorldDir) -> str:
        """Add ``world`` to the open stage as a payload under /World/LyraWorlds; returns the new prim path.

        On any failure the prims this call created are removed again, so the stage is left as it was.
        """
        stage = omni.usd.get_context().get_stage()
        if stage is None:
            raise InputError(None, "no stage is open (File > New first)")
        root = stage.GetPrimAtPath(WORLDS_ROOT_PRIM)
        taken = {str(child.GetPath()) for child in root.GetChildren()} if root else set()
        plan = plan_world_reference(world, taken)
        rotate_x, scale = stage_correction(str(UsdGeom.GetStageUpAxis(stage)), UsdGeom.GetStageMetersPerUnit(stage))
        try:
            layer = Sdf.Layer.FindOrOpen(plan.asset_path)
        except Exception as exc:  # noqa: BLE001 - pxr raises Tf.ErrorException on parse errors
            raise InputError(plan.asset_path, f"the world's USD layer cannot be opened: {exc}") from None
        if layer is None:
            raise InputError(plan.asset_path, "the world's USD layer cannot be opened (corrupt or unreadable)")
        created: list[str] = []
        try:
            for parent in ("/World", WORLDS_ROOT_PRIM):
                if not stage.GetPrimAtPath(parent):
                    UsdGeom.Xform.Define(stage, parent)
                    created.append(parent)
            xform = UsdGeom.Xform.Define(stage, plan.prim_path)
            created.append(plan.prim_path)
            prim = xform.GetPrim()
            if plan.as_payload:
                prim.GetPayloads().AddPayload(plan.asset_path)
            else:
                prim.GetReferences().AddReference(plan.asset_path)
            prim.SetCustomDataByKey(WORLD_DIR_KEY, str(world.path))
            if rotate_x != 0.0:
                xform.AddRotateXOp().Set(rotate_x)
            if scale != 1.0:
                xform.AddScaleOp().Set(Gf.Vec3d(scale, scale, scale))
            self._keep_one_physics_scene(stage, plan.prim_path)
        except Exception:
            for path in reversed(created):
                stage.RemovePrim(path)
            raise
        self._worlds[plan.prim_path] = world
        self._last_world_prim = plan.prim_path
        return plan.prim_path

    @staticmethod
    def _keep_one_physics_scene(stage: Usd.Stage, world_prim: str) -> None:
        """Deactivate the world's own PhysicsScene when the stage already has one elsewhere (one scene steps all)."""
        inside = world_prim.rstrip("/") + "/"
        others = [p for p in stage.Traverse() if p.IsA(UsdPhysics.Scene) and not str(p.GetPath()).startswith(inside)]
        if not others:
            return
        for prim in Usd.PrimRange(stage.GetPrimAtPath(world_prim)):
            if prim.IsA(UsdPhysics.Scene):
                prim.SetActive(False)
                carb.log_info(f"[lyra_isaac] {prim.GetPath()} deactivated: the stage steps {others[0].GetPath()}")

    # ------------------------------------------------------------------------------------------------ batch
    def show_batch_picker(self) -> None:
        """Menu: pick a folder of Lyra outputs / PLYs and convert them all into the output folder."""
        if self._busy():
            return
        self._pick("Batch Convert Folder (holding Lyra output folders or splat PLYs)", "Convert",
                   self.batch_convert, lambda item: item is not None and item.is_folder)

    def batch_convert(self, folder: str) -> asyncio.Future | None:
        """Convert every source in ``folder`` with run_batch; returns the running task."""
        if self._busy():
            return None
        try:
            inputs = batch_inputs(folder)
            options = self._read_options()
        except LyraError as exc:
            self._report_error("Batch conversion", exc)
            return None
        self._task = asyncio.ensure_future(self._batch_async(inputs, options))
        return self._task

    async def _batch_async(self, inputs: list[str], options: ConversionOptions) -> None:
        def run(progress: Progress):
            from ..batch.run import run_batch  # the function behind `lyra-isaac batch`

            return run_batch(inputs, options.output_root, preset=options.preset, progress=progress)

        summary = await self._run_in_thread(f"Batch ({len(inputs)} scenes)", run)
        if summary is not None:
            self._status(f"Batch finished into {options.output_root}: {summary}")
            post_notification(f"Lyra Worlds: batch finished ({len(inputs)} scenes)", status=NotificationStatus.INFO)

    # --------------------------------------------------------------------------------------------- humanoid
    def _target_world(self, stage: Usd.Stage) -> tuple[str, WorldDir]:
        """The world Add Humanoid uses: the selected world prim, else the last imported one, else the stage itself
        when the stage is a world.usda (Open Last World)."""
        for path in omni.usd.get_context().get_selection().get_selected_prim_paths():
            prim = stage.GetPrimAtPath(path)
            while prim and prim.GetPath() != prim.GetPath().absoluteRootPath:
                world_dir = prim.GetCustomDataByKey(WORLD_DIR_KEY)
                if world_dir:
                    key = str(prim.GetPath())
                    self._worlds.setdefault(key, load_world(world_dir))
                    return key, self._worlds[key]
                prim = prim.GetParent()
        if self._last_world_prim and stage.GetPrimAtPath(self._last_world_prim):
            return self._last_world_prim, self._worlds[self._last_world_prim]
        root = stage.GetPrimAtPath(WORLDS_ROOT_PRIM)
        for child in root.GetChildren() if root else []:
            world_dir = child.GetCustomDataByKey(WORLD_DIR_KEY)
            if world_dir:
                key = str(child.GetPath())
                self._worlds.setdefault(key, load_world(world_dir))
                return key, self._worlds[key]
        layer_path = stage.GetRootLayer().realPath
        if layer_path and (Path(layer_path).parent / WORLD_JSON).is_file():
            return "/World", load_world(Path(layer_path).parent)
        raise InputError(None, "no Lyra world in the stage: import one first (Tools > Robotics > Lyra Worlds)")

    def add_humanoid(self) -> asyncio.Future | None:
        """Menu: add the window's humanoid at the target world's next spawn point; returns the running task."""
        self._task_humanoid = asyncio.ensure_future(self._add_humanoid_async(self._robot_name()))
        return self._task_humanoid

    async def _add_humanoid_async(self, robot_name: str) -> str | None:
        stage = omni.usd.get_context().get_stage()
        created: list[str] = []
        try:
            from isaacsim.core.experimental.prims import XformPrim
            from isaacsim.core.simulation_manager import SimulationManager
            from isaacsim.storage.native import get_assets_root_path_async

            if stage is None:
                raise InputError(None, "no stage is open")
            if stage_correction(str(UsdGeom.GetStageUpAxis(stage)), UsdGeom.GetStageMetersPerUnit(stage)) != (0.0, 1.0):
                raise InputError(None, "humanoids need a Z-up stage in metres (File > New in Isaac Sim makes one); "
                                       "this stage has another up axis or unit")
            world_prim, world = self._target_world(stage)
            robot = robot_spec(robot_name)
            url = robot.usd_url(await get_assets_root_path_async())
            result, _ = await omni.client.stat_async(url)
            if result != omni.client.Result.OK:
                raise InputError(url, f"{robot.title} asset not reachable ({result}); check the asset root setting "
                                      "/persistent/isaac/asset_root/default")
            world_xform = UsdGeom.Xformable(stage.GetPrimAtPath(world_prim))
            offset = world_xform.ComputeLocalToWorldTransform(Usd.TimeCode.Default()).ExtractTranslation()
            root = stage.GetPrimAtPath(ROBOTS_ROOT_PRIM)
            taken = {str(child.GetPath()) for child in root.GetChildren()} if root else set()
            placement = self._cycler.place(world, robot, taken, world_offset=tuple(float(v) for v in offset))
            if not root:
                UsdGeom.Xform.Define(stage, ROBOTS_ROOT_PRIM)
                created.append(ROBOTS_ROOT_PRIM)
            prim = UsdGeom.Xform.Define(stage, placement.prim_path).GetPrim()
            created.append(placement.prim_path)
            prim.GetReferences().AddReference(url)
            prepare_robot_prim(prim, SimulationManager.get_active_physics_engine() or "physx")
            XformPrim(placement.prim_path, positions=[placement.position], orientations=[placement.orientation],
                      reset_xform_op_properties=True)
        except Exception as exc:  # noqa: BLE001
            for path in reversed(created):
                stage.RemovePrim(path)
            self._report_error("Add Humanoid", exc)
            return None
        self._status(f"Added {robot.title} at {placement.prim_path}, spawn point {placement.spawn_index} of "
                     f"{world.path.name}")
        return placement.prim_path

    # ---------------------------------------------------------------------------------------------- reopen
    def open_last_world(self) -> asyncio.Future | None:
        """Menu: open the last imported world's world.usda as the stage."""
        last = self._settings.get(self._last_world_setting)
        try:
            if not last:
                raise InputError(None, "no world was imported yet")
            world = load_world(last)
            plan = plan_world_reference(world)
        except LyraError as exc:
            self._report_error("Open Last World", exc)
            return None
        self._worlds.clear()
        self._last_world_prim = None
        return asyncio.ensure_future(omni.usd.get_context().open_stage_async(plan.asset_path))

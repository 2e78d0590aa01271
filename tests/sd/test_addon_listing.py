"""/api/models lists LoRAs, VAEs and embeddings; the node schemas offer them as choices."""

from __future__ import annotations

from graph import Registry
from nodes.sd.builtin_loras import builtin_loras
from service import make_app
from tests.server_testkit import make_config, owned_client


async def test_api_models_and_node_choices_list_the_addon_folders(aiohttp_client, tmp_path):
    models = tmp_path / "models"
    for folder, name in [
        ("loras", "style/outlined.safetensors"),
        ("vae", "vae-ft-mse.safetensors"),
        ("embeddings", "bad-hands.pt"),
    ]:
        (models / folder / name).parent.mkdir(parents=True, exist_ok=True)
        (models / folder / name).write_bytes(b"x")
    (models / "vae" / "sdxl-vae").mkdir()
    (models / "vae" / "sdxl-vae" / "config.json").write_text("{}")
    (models / "loras" / "readme.txt").write_text("not a model")
    app = make_app(make_config(tmp_path), registry=Registry.from_package("nodes"))
    client = await owned_client(aiohttp_client, app)
    listing = await (await client.get("/api/models")).json()
    shipped = list(builtin_loras())  # the shipped LoRAs come first (builtin/<stem>)
    assert listing["loras"] == [*shipped, "style/outlined.safetensors"]
    assert listing["vae"] == ["sdxl-vae", "vae-ft-mse.safetensors"]
    assert listing["embeddings"] == ["bad-hands.pt"]
    schema = (await (await client.get("/api/nodes")).json())["nodes"]

    def widget(node: str) -> dict:
        return next(i for i in schema[node]["inputs"] if i["name"] == "name")["widget"]

    # the canvas draws a select for every "select" widget (web/src derives it)
    assert widget("LoadLoRA") == {
        "kind": "select",
        "choices": [*shipped, "style/outlined.safetensors"],
        "source": "loras",
    }
    assert widget("LoadVAE")["choices"] == ["sdxl-vae", "vae-ft-mse.safetensors"]

"""How a person gets weights that no program can download (official checkpoints on Google Drive
or Baidu Drive) into the zoo: the one message every route gives, ending with that route's way
to load the converted folder."""
from typing import TYPE_CHECKING, Dict

if TYPE_CHECKING:
    from .catalogue import WeightsEntry

__all__ = ["ROUTES", "fetch_instructions"]

# How each route loads the hub folder DIR that `epsanet convert` writes, by model name.
ROUTES: Dict[str, str] = {
    "python": "epsanet.{model}(weights='DIR') (torch.hub: torch.hub.load(REPO, '{model}', weights='DIR'))",
    "timm": "timm.create_model('local-dir:DIR', pretrained=True) after `import epsanet`",
    "cli-model": "`--model DIR`",
    "cli-pretrained": "`--pretrained DIR`",
}


def fetch_instructions(entry: "WeightsEntry", route: str = "python") -> str:
    """One line: where to download ``entry``'s file (with the extraction code the page asks for),
    the ``epsanet convert`` command that makes a hub folder of it, and how ``route`` (a key of
    :data:`ROUTES`) then loads that folder."""
    file = entry.fetch_file or "FILE"
    code = entry.extra.get("fetch_code")
    page = f"{entry.fetch_url} (extraction code {code})" if code else entry.fetch_url
    load = ROUTES[route].format(model=entry.model)
    return (
        f"weights {entry.name} must be fetched by hand: download {entry.fetch_file or 'the checkpoint'} from "
        f"{page}, convert it with `epsanet convert {file} --model {entry.model} --tag {entry.tag} --out DIR`, "
        f"then load DIR with {load}"
    )

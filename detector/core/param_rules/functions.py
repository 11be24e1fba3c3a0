"""Lambda: permissions for other principals, layers, unauthenticated function URLs."""

from __future__ import annotations

from detector.core.events import CloudTrailEvent
from detector.core.param_rules.base import Hit, RuleSet
from detector.core.param_rules.shapes import account_of, arn_account, as_list, get
from detector.core.taxonomy import Category

RULES = RuleSet()


@RULES.rule(
    "public-lambda-permission",
    "lambda:AddPermission lambda:AddLayerVersionPermission",
    Category.DATA_EXPOSURE,
    0,
    "a function or layer permission for '*' or another account",
)
def _public_lambda_permission(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    principal = get(params, "principal")
    if not isinstance(principal, str):
        return None
    pinned = any(
        get(params, key)
        for key in ("sourceArn", "sourceAccount", "principalOrgID", "organizationId")
    )
    if principal == "*" and not pinned:
        return Hit(reason="Lambda permission grants principal '*' without a source condition")
    account = account_of(principal)
    if account and event.account_id and account != event.account_id:
        return Hit(reason=f"Lambda permission grants account {account}")
    return None


@RULES.rule(
    "lambda-layer-added",
    "lambda:UpdateFunctionConfiguration lambda:CreateFunction",
    Category.PERSISTENCE,
    1,
    "layers attached to a function (code that runs on every invocation)",
)
def _lambda_layers(event: CloudTrailEvent) -> Hit | None:
    layers = [layer for layer in as_list(get(event.request_parameters, "layers")) if layer]
    if not layers:
        return None
    foreign = [
        str(layer)
        for layer in layers
        if (account := arn_account(str(layer))) and event.account_id and account != event.account_id
    ]
    if foreign:
        return Hit(reason=f"function given a layer from another account: {foreign[0]}", tier=0)
    return Hit(reason=f"function given layer {layers[0]}")


@RULES.rule(
    "public-function-url",
    "lambda:CreateFunctionUrlConfig lambda:UpdateFunctionUrlConfig",
    Category.DATA_EXPOSURE,
    0,
    "a function URL with AuthType NONE (anyone on the internet can invoke it)",
)
def _public_function_url(event: CloudTrailEvent) -> Hit | None:
    params = event.request_parameters
    if str(get(params, "authType")).upper() == "NONE":
        return Hit(reason=f"function URL of {get(params, 'functionName')} needs no authentication")
    return None

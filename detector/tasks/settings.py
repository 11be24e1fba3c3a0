"""The `tasks` section of the configuration: where STS is, and each task's defaults.

```yaml
tasks:
  region: eu-west-1
  role_arn: arn:aws:iam::111122223333:role/agent-tasks   # when --role is not given
  duration_seconds: 3600                                  # when --duration is not given
  endpoint_url: http://127.0.0.1:5000                     # tests and private endpoints only
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from detector.config import Check, Settings, parse_section


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSettings:
    region: str = "us-east-1"
    role_arn: str | None = None
    # AssumeRole accepts 900 s to the role's maximum session duration (at most 12 h).
    duration_seconds: Annotated[int, Check(low=900, high=43200)] = 3600
    endpoint_url: str | None = None


def task_settings(settings: Settings) -> TaskSettings:
    return parse_section(TaskSettings, settings.tasks, source=settings.source, key="tasks")

"""The pre-flight gate: is an agent's intended AWS call within its task scope, before it runs?

shell        command line → simple commands (quoting, operators, substitutions, heredocs)
unwrap       simple commands → the programs that actually run (sudo, env, xargs, bash -c, ...)
awscli       one `aws ...` argv → IAM actions, resource ARNs, region
s3_commands  the high-level `aws s3` commands as a table
iac          infrastructure tools that call AWS for the agent (terraform, cdk, sam, ...)
decide       the pure decision: a command line and a scope → a Verdict
hooks        the agents' hook protocols: stdin JSON in, exit code and messages out
scope_source which scope: a scope file, or the task the agent runs under (registry, service)
scope_cache  YAML scope files cached as JSON, so a start-up need not import PyYAML
task         the task as the registry (read-only SQLite) or the service has it
report       a verdict as journaled and sent to the service
service      the service's URL and token; one JSON request (http_client: over a socket)
"""

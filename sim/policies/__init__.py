"""Policy plug-in families: ``autoscaling`` and ``colocation``, each a package with its registry.

Policies decide, the engine acts: a policy takes plain data and returns plain data. This
package itself holds nothing.
"""

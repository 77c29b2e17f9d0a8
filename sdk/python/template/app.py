"""A team's first command: copy this directory, rename it, build it. See README.md.

`/hello [name]` greets someone, with a button anyone in the session may press.
"""

from slashd_plugin import Plugin, Reply, arg

plugin = Plugin("hello", "0.2.0")


# A typed argument: the host parses and checks it, and writes the usage line.
@plugin.command("hello", "Say hello", args=[arg.text("name", "Who to greet (default: you)")])
def hello(call):
    name = call.values.get("name", call.caller.name)
    return (
        Reply.markdown(f"Hello, **{name}**!")
        .data({"name": name})
        .button("wave", "Wave back")
    )


# The "Wave back" button; its result is a new message in the session.
@plugin.action("wave")
def wave(event):
    greeted = (event.data or {}).get("name", "someone")
    return f"{event.caller.name} waves back at {greeted}"


# What componentize-py looks for in the app module.
WitWorld = plugin.world()

"""The command line's sub-commands: each module holds a group's command functions, each beside its options."""

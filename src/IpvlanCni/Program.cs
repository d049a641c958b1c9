// The executable a container runtime calls with no arguments: everything lives in the plugin library. A person or an
// installer names a subcommand first (`ipvlan-cni --help` lists them).
if (args.Length > 0 && IpvlanCni.Subcommands.Find(args[0]) is { } subcommand)
    return subcommand(args[1..]);
IpvlanCni.Interop.Libc.UseSingleMallocArena();
return IpvlanCni.Plugin.PluginMain.Run(args);

// The executable a container runtime calls with no arguments: everything lives in the plugin library. A person or an
// installer names a subcommand first (`ipvlan-cni --help` lists them). Installed under the name ipvlan-cni-ipam, the
// same binary is the standalone cluster IPAM plugin.
if (args.Length > 0 && IpvlanCni.Subcommands.Find(args[0]) is { } subcommand)
    return subcommand(args[1..]);
IpvlanCni.Interop.Libc.UseSingleMallocArena();
if (Path.GetFileName(Environment.GetCommandLineArgs()[0]) == IpvlanCni.Ipam.StandaloneIpam.ExecutableName)
    return IpvlanCni.Ipam.StandaloneIpam.Run();
return IpvlanCni.Plugin.PluginMain.Run(args);

// The executable a container runtime calls: everything lives in the plugin library. A runtime calls a CNI plugin with
// no arguments; a first argument names a subcommand, whose code is never touched on the CNI path. Installed under the
// name ipvlan-cni-ipam, the same binary is the standalone cluster IPAM plugin.
IpvlanCni.Interop.Libc.UseSingleMallocArena();
if (Path.GetFileName(Environment.GetCommandLineArgs()[0]) == IpvlanCni.ClusterIpam.StandaloneIpam.ExecutableName)
    return IpvlanCni.ClusterIpam.StandaloneIpam.Run();
return args switch
{
    ["agent", ..] => IpvlanCni.Agent.AgentMain.Run(args.AsSpan(1), IpvlanCni.ClusterIpam.ClusterIpamService.Create),
    ["ipam", ..] => IpvlanCni.ClusterIpam.IpamCommand.Run(args.AsSpan(1)),
    _ => IpvlanCni.Plugin.PluginMain.Run(args),
};

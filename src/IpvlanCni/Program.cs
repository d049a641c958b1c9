// The executable a container runtime calls: everything lives in the plugin library. A runtime calls a CNI plugin with
// no arguments; a first argument names a subcommand, whose code is never touched on the CNI path. Installed under the
// name ipvlan-cni-ipam, the same binary is the standalone cluster IPAM plugin.
IpvlanCni.Interop.Libc.UseSingleMallocArena();
if (Path.GetFileName(Environment.GetCommandLineArgs()[0]) == IpvlanCni.Ipam.StandaloneIpam.ExecutableName)
    return IpvlanCni.Ipam.StandaloneIpam.Run();
return args switch
{
    // The agent (and the etcd client the ipam subcommands use) is its own binary beside this one: see its project.
    ["agent" or "ipam", ..] => IpvlanCni.Plugin.AgentExec.Run(args),
    _ => IpvlanCni.Plugin.PluginMain.Run(args),
};

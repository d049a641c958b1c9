// The executable a container runtime calls: everything lives in the plugin library. A runtime calls a CNI plugin with
// no arguments; a first argument names a subcommand, whose code is never touched on the CNI path.
IpvlanCni.Interop.Libc.UseSingleMallocArena();
return args switch
{
    ["agent", ..] => IpvlanCni.Agent.AgentMain.Run(args.AsSpan(1)),
    _ => IpvlanCni.Plugin.PluginMain.Run(args),
};

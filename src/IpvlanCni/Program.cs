// The executable a container runtime calls: everything lives in the plugin library. Runtimes call a CNI plugin
// with no arguments; a first argument names an operator's subcommand, which runs as its own executable.
IpvlanCni.Interop.Libc.UseSingleMallocArena();
return args switch
{
    ["explain", .. var rest] => IpvlanCni.Interop.Libc.ExecCompanion("ipvlan-cni-explain", rest),
    _ => IpvlanCni.Plugin.PluginMain.Run(args),
};

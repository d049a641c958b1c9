// The executable a container runtime calls: everything lives in the plugin library.
IpvlanCni.Interop.Libc.UseSingleMallocArena();
return IpvlanCni.Plugin.PluginMain.Run(args);

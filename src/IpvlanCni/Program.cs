// The executable a container runtime calls: everything lives in the plugin library.
return IpvlanCni.Plugin.PluginMain.Run(args);

namespace IpvlanCni.Plugin;

public static class PluginMain
{
    public static int Run(string[] args) => throw new NotImplementedException();
}

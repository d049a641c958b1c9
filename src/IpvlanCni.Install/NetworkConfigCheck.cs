using System.Text.Json;
using IpvlanCni.Cni;
using IpvlanCni.Ipam;
using IpvlanCni.Plugin;

namespace IpvlanCni.Install;

/// <summary>
/// Reads a network configuration the way an ADD would, without touching the node: a conflist is split into the
/// per-plugin configurations a runtime hands each plugin (with the list's name and cniVersion, as libcni does), and
/// each one of type ipvlan-cni goes through the plugin's own parser and, for built-in IPAM, the IPAM's.
/// </summary>
public static class NetworkConfigCheck
{
    public const string PluginType = "ipvlan-cni";

    /// <summary>A conflist: { cniVersion, name, plugins: [...] }. Throws <see cref="CniException"/> naming the field.</summary>
    public static void CheckConflist(ReadOnlyMemory<byte> json)
    {
        var list = CniConfigReader.Parse(json, "conflist");
        string version = list.GetRequiredString("cniVersion");
        string name = list.GetRequiredString("name");
        var plugins = list.GetArray("plugins");
        if (plugins.Count == 0)
            throw list.Invalid("plugins: a conflist needs at least one plugin");
        int ours = 0;
        for (int i = 0; i < plugins.Count; i++)
        {
            if (plugins[i].GetRequiredString("type") != PluginType)
                continue; // another plugin of the chain: its parser is its own
            ours++;
            try
            {
                CheckPlugin(WithListKeys(plugins[i].Element, version, name));
            }
            catch (CniException e)
            {
                throw new CniException(e.Code, $"plugins[{i}]: {e.Message}", e.Details, e);
            }
        }
        if (ours == 0)
            throw list.Invalid($"plugins: no plugin of type \"{PluginType}\"");
    }

    /// <summary>True when the conflist parses as JSON and one of its plugins is of type ipvlan-cni.</summary>
    public static bool UsesPlugin(ReadOnlyMemory<byte> json)
    {
        try
        {
            return CniConfigReader.Parse(json, "conflist").GetArray("plugins")
                .Any(p => p.Kind == JsonValueKind.Object && p.GetString("type") == PluginType);
        }
        catch (CniException)
        {
            return false;
        }
    }

    /// <summary>One plugin's configuration as the runtime passes it on stdin.</summary>
    public static void CheckPlugin(ReadOnlyMemory<byte> json)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["CNI_COMMAND"] = "ADD",
            ["CNI_CONTAINERID"] = "configuration-check",
            ["CNI_NETNS"] = "/proc/self/ns/net",
            ["CNI_IFNAME"] = "eth0",
            ["CNI_PATH"] = "/opt/cni/bin",
        };
        var request = CniDispatcher.ParseRequest(CniCommand.Add, environment, new MemoryStream(json.ToArray(), writable: false));
        var config = PluginConfig.Parse(request);
        if (config.Ipam is { } ipam)
        {
            // The built-in IPAM types are parsed here; any other type is a plugin from CNI_PATH with its own parser.
            _ = config.IpamType switch
            {
                "host-local" => (object)HostLocalConfig.Parse(ipam, request),
                "static" => StaticConfig.Parse(ipam, request),
                _ => ipam,
            };
        }
    }

    static byte[] WithListKeys(JsonElement plugin, string version, string name)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("cniVersion", version);
            writer.WriteString("name", name);
            foreach (var property in plugin.EnumerateObject())
                if (property.Name is not ("cniVersion" or "name"))
                    property.WriteTo(writer);
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>The message of a refusal, for people: the spec's code name is for runtimes.</summary>
    public static string Describe(CniException e) => e.Details is { Length: > 0 } details ? $"{e.Message} ({details})" : e.Message;
}

using System.Net;
using System.Text;
using System.Text.Json;
using IpvlanCni.Cni;
using IpvlanCni.Network;

namespace IpvlanCni.Ipam;

/// <summary>
/// An IPAM plugin executed from CNI_PATH with our stdin and the spec's environment for its command (as libcni's
/// invoke builds it), killed when it outlives its deadline.
/// </summary>
public sealed class DelegatingIpam : IIpam
{
    public string Type { get; }
    public TimeSpan Timeout { get; }

    public DelegatingIpam(string type, TimeSpan timeout)
    {
        Timeout = timeout;
        // The type names an executable in CNI_PATH, never a path.
        if (type.Length == 0 || type is "." or ".." || type.Contains('/') || type.Contains('\0'))
            throw IpamJson.Invalid("ipam.type", $"\"{type}\" is not a plugin name");
        Type = type;
    }

    public CniResult Allocate(CniRequest request)
    {
        var output = Run(request, "ADD");
        try
        {
            return CniResultJson.Parse(output, request.Config.CniVersion);
        }
        catch (CniException e)
        {
            throw new CniException(e.Code, $"IPAM plugin {Type}: result {e.Message}", e.Details, e);
        }
    }

    public void Release(CniRequest request) => Run(request, "DEL");

    public void Check(CniRequest request) => Run(request, "CHECK");

    public void Status(CniRequest request) => Run(request, "STATUS");

    /// <summary>The config already carries cni.dev/valid-attachments; the plugin reads them from stdin.</summary>
    public void GarbageCollect(CniRequest request, IReadOnlyList<GcAttachment> validAttachments) => Run(request, "GC");

    public string FindPlugin(IReadOnlyList<string> paths)
    {
        foreach (var dir in paths)
        {
            if (dir.Length == 0)
                continue;
            string candidate = Path.Join(dir, Type);
            if (OperatingSystem.IsLinux() && File.Exists(candidate) && (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
                return candidate;
        }
        throw IpamJson.Invalid("ipam.type", $"failed to find plugin \"{Type}\" in path [{string.Join(" ", paths)}]");
    }

    byte[] Run(CniRequest request, string command)
    {
        string plugin = FindPlugin(request.PluginPaths);
        ChildProcess.Outcome outcome;
        try
        {
            outcome = ChildProcess.Run(plugin, [], Environment(request, command), request.ConfigBytes, Timeout);
        }
        catch (ChildProcessTimeoutException e)
        {
            throw new CniException(CniErrorCode.IpamPluginFailed, $"IPAM plugin {plugin} {command}: {e.Message}", inner: e);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            throw new CniException(CniErrorCode.IpamPluginFailed, $"IPAM plugin {plugin}: cannot start: {e.GetType().Name}", inner: e);
        }
        if (outcome.ExitCode != 0)
        {
            if (CniErrorJson.TryRead(outcome.Output, out var error))
                throw error;
            throw new CniException(CniErrorCode.IpamPluginFailed,
                $"IPAM plugin {plugin} {command} failed with exit status {outcome.ExitCode}", outcome.Error);
        }
        return outcome.Output;
    }

    /// <summary>
    /// The caller's environment with the spec's variables for this call set from the parsed request, not copied: a
    /// GC's or a rollback's release names the attachment it releases, whatever the invocation's own environment held.
    /// </summary>
    static Dictionary<string, string> Environment(CniRequest request, string command)
    {
        var environment = new Dictionary<string, string>(request.Environment, StringComparer.Ordinal);
        foreach (string key in (string[])["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"])
            environment.Remove(key);
        environment["CNI_COMMAND"] = command;
        environment["CNI_PATH"] = string.Join(':', request.PluginPaths);
        if (command is "ADD" or "DEL" or "CHECK" && request.HasAttachment)
        {
            environment["CNI_CONTAINERID"] = request.ContainerId;
            environment["CNI_IFNAME"] = request.IfName;
            environment["CNI_NETNS"] = request.NetnsPath;
        }
        return environment;
    }
}

using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using IpvlanCni.Cni;
using IpvlanCni.Network;

namespace IpvlanCni.Ipam;

/// <summary>An IPAM plugin executed from CNI_PATH with our environment (CNI_COMMAND set) and our stdin, as libcni does.</summary>
public sealed class DelegatingIpam : IIpam
{
    public string Type { get; }

    public DelegatingIpam(string type)
    {
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
        var start = new ProcessStartInfo(plugin)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment.Clear();
        foreach (var (k, v) in request.Environment)
            start.Environment[k] = v;
        start.Environment["CNI_COMMAND"] = command;

        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            throw new CniException(CniErrorCode.IpamPluginFailed, $"IPAM plugin {plugin}: cannot start: {e.Message}", inner: e);
        }
        var stderr = process.StandardError.ReadToEndAsync();
        using var stdout = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        try
        {
            process.StandardInput.BaseStream.Write(request.ConfigBytes);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The plugin exited without reading stdin; its exit status and output tell why.
        }
        copy.GetAwaiter().GetResult();
        process.WaitForExit();
        var output = stdout.ToArray();
        if (process.ExitCode != 0)
        {
            if (CniErrorJson.TryRead(output, out var error))
                throw error;
            throw new CniException(CniErrorCode.IpamPluginFailed,
                $"IPAM plugin {plugin} {command} failed with exit status {process.ExitCode}", stderr.GetAwaiter().GetResult().Trim());
        }
        return output;
    }
}

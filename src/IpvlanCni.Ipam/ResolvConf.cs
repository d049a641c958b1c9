using IpvlanCni.Cni;
using IpvlanCni.Interop;

namespace IpvlanCni.Ipam;

/// <summary>host-local's resolvConf option: nameserver, domain, search and options lines become the result's dns.</summary>
public static class ResolvConf
{
    /// <summary>The reference reads at most this much of a file (and so do we, of any file a configuration names).</summary>
    public const int MaxBytes = RegularFile.MaxBytes;

    /// <summary>
    /// Reads the file a configuration names: it must be a regular file of at most 64 KiB, typed through an O_PATH
    /// descriptor before it is opened for reading, so a FIFO, a device (/dev/zero) or a socket is refused at once.
    /// </summary>
    public static CniDns Parse(string path)
    {
        byte[] bytes;
        try
        {
            bytes = RegularFile.Read(path, MaxBytes);
        }
        catch (SystemCallException e)
        {
            throw new CniException(CniErrorCode.IoFailure, $"ipam.resolvConf: cannot read \"{CniNames.Truncate(path)}\": {ErrnoInfo.Describe((int)e.Errno)}");
        }
        catch (UnsafePathException e)
        {
            throw new CniException(CniErrorCode.InvalidNetworkConfig, $"ipam.resolvConf: \"{CniNames.Truncate(path)}\" {e.Reason}");
        }
        return ParseLines(System.Text.Encoding.UTF8.GetString(bytes).Split('\n'));
    }

    public static CniDns ParseLines(IEnumerable<string> lines)
    {
        var dns = new CniDns();
        string? domain = null;
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
                continue;
            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2)
                continue;
            switch (fields[0])
            {
                case "nameserver": dns.Nameservers.Add(fields[1]); break;
                case "domain": domain = fields[1]; break;
                case "search": dns.Search.AddRange(fields[1..]); break;
                case "options": dns.Options.AddRange(fields[1..]); break;
            }
        }
        return dns with { Domain = domain };
    }
}

// The tests exercise Linux file modes, flock and the reference Linux binary.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

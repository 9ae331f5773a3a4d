using System.CommandLine;
using Qcow.Cli;

return QcowCommand.Run(args);

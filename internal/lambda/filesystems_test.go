package lambda

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/lambdagw/gateway/internal/structs"
)

// TestParseFileSystemARN: the gateway's ARNs name a file system and maybe an access point; an
// EFS access point's names the access point alone; anything else is refused as
// InvalidParameterValueException naming it.
func TestParseFileSystemARN(t *testing.T) {
	ok := map[string][2]string{
		"arn:lambdagw:file-system:us-east-1::shared":                                {"shared", ""},
		"arn:lambdagw:file-system:eu-west-1::shared/team-a":                         {"shared", "team-a"},
		"arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/team-a":      {"", "team-a"},
		"arn:aws-us-gov:elasticfilesystem:us-gov-west-1:1:access-point/fsap-0abc12": {"", "fsap-0abc12"},
	}
	for arn, want := range ok {
		fs, ap, err := ParseFileSystemARN(arn)
		if err != nil || fs != want[0] || ap != want[1] {
			t.Errorf("%s: %q %q %v", arn, fs, ap, err)
		}
	}
	bad := []string{"", "shared", "arn:lambdagw:file-system:us-east-1::", "arn:lambdagw:file-system:us-east-1::../etc",
		"arn:lambdagw:file-system:us-east-1::a/b/c", "arn:lambdagw:file-system:us-east-1::a/", "arn:lambdagw:queue:us-east-1::q",
		"arn:aws:elasticfilesystem:us-east-1:1:access-point/", "arn:aws:elasticfilesystem:us-east-1:1:access-point/a/../b",
		"arn:aws:elasticfilesystem:us-east-1:1:file-system/fs-123", "arn:aws:s3:::bucket"}
	for _, arn := range bad {
		_, _, err := ParseFileSystemARN(arn)
		var le *Error
		if !errors.As(err, &le) || le.Type != "InvalidParameterValueException" || !strings.Contains(le.Message, "FileSystemConfigs.Arn") {
			t.Errorf("%q: %v", arn, err)
		}
	}
	if _, _, err := ParseFileSystemARN("arn:aws:elasticfilesystem:us-east-1:1:file-system/fs-123"); !strings.Contains(err.Error(), "access points") {
		t.Errorf("an EFS file system's ARN: %v", err)
	}
}

// TestFileSystemConfigsAnswerTheGivenARN: a function's file systems are answered with the ARN
// they were set with (Terraform sees no drift), and with the gateway's when it had none or no
// longer names them.
func TestFileSystemConfigsAnswerTheGivenARN(t *testing.T) {
	efs := "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/team-a"
	fss := []structs.FileSystemConfig{
		{FileSystem: "shared", AccessPoint: "team-a", LocalMountPath: "/mnt/a", ARN: efs},
		{FileSystem: "shared", LocalMountPath: "/mnt/b", ReadOnly: true},
		{FileSystem: "shared", AccessPoint: "team-b", LocalMountPath: "/mnt/c", ARN: efs},
	}
	got := FileSystemConfigsFrom(fss, "eu-west-1")
	want := []FileSystemConfig{
		{Arn: efs, LocalMountPath: "/mnt/a"},
		{Arn: "arn:lambdagw:file-system:eu-west-1::shared", LocalMountPath: "/mnt/b", GatewayReadOnly: true},
		{Arn: "arn:lambdagw:file-system:eu-west-1::shared/team-b", LocalMountPath: "/mnt/c"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	if n := (FileSystemConfig{Arn: "arn:lambdagw:file-system:r::shared/team-b"}).Name(); n != "shared/team-b" {
		t.Errorf("Name %q", n)
	}
	c := ConfigurationFrom(&structs.Function{Name: "f", FileSystems: fss[:1]}, "us-east-1")
	if len(c.FileSystemConfigs) != 1 || c.FileSystemConfigs[0].Arn != efs {
		t.Errorf("ConfigurationFrom: %+v", c.FileSystemConfigs)
	}
	if c := ConfigurationFrom(&structs.Function{Name: "f"}, "us-east-1"); c.FileSystemConfigs != nil {
		t.Errorf("a function without file systems is answered with %+v", c.FileSystemConfigs)
	}
}
